"""sgdprob.linear against PyTorch's per-sample gradients (torch.func).

A user who wants per-sample gradients would otherwise reach for
``torch.func.vmap(torch.func.grad(loss))``. Here both compute the
gradients of the same least-squares model on the diabetes data: the layer
``y = W x`` with a column of ones appended to ``x`` for the bias, the loss
of sample ``b`` is ``1/2 |y_b - target_b|^2``, so ``ygrad[b] = y_b -
target_b``. W.grad is compared with autograd on the mean loss, the
per-sample gradients with vmap of grad, and W.grad2, the variance and the
noise scale with torch's mean, var and sum of those per-sample gradients.
Everything is float64 on both sides.

Tolerances are float64 rounding bounds, with u = 2**-53 and
gamma(n) = n u / (1 - n u) (Higham, Accuracy and Stability of Numerical
Algorithms, 2nd ed., sections 3.1 and 1.9):

- The residual. ``ygrad`` is torch's forward, ``x @ W.T - target``; vmap
  of grad forms ``W @ x_b - target_b`` again, perhaps summing in another
  order. Each is within gamma(I + 1) S of the exact residual, with
  ``S = sum_i |W[j, i] x[b, i]| + |target_b|``, so they differ by at most
  ``D = 2 gamma(I + 1) S``.
- A per-sample gradient ``r x`` is one product on each side: they differ
  by at most ``E = (D + 2u (|r| + D)) |x|``.
- A batch mean of B terms t_b (a GEMM, or torch's reduction) errs by at
  most (B + 4) u mean_b |t_b| on each side (B + 6 with the squares);
  different inputs add the mean of E (of E (2 |g_b| + E) for squares).
- The variance: the kernel's two passes err by
  ``2u sum |d_b| |g_b| + (B + 4) u sum d_b^2`` (d_b = g_b - mean; see
  tests/test_linear.py); torch's may be Welford's updating algorithm,
  within ``B u kappa sum d_b^2 = B u sqrt(sum g_b^2 sum d_b^2)`` (Chan,
  Golub and LeVeque 1983), which bounds a plain two-pass one too. Inputs
  that differ by at most E_max move ``sum d_b^2`` by at most
  ``4 E_max sum |d_b| + 4 B E_max^2``. All over ``B - ddof``.
- The noise scale: sums of at most B + I + J terms bounded by sum W.grad2,
  as in tests/test_linear.py, plus the input differences carried through.
"""
import numpy as np
import pytest

from sgdprob import linear
from sgdprob.datasets import load_diabetes

torch = pytest.importorskip("torch")
func = pytest.importorskip("torch.func")

U = 2.0 ** -53


def gamma(n):
    return n * U / (1 - n * U)


# ------------------------------------------------------------- the model


def loss_one(W, x_b, t_b):
    """The loss of one sample: 1/2 |W x_b - t_b|^2."""
    return 0.5 * torch.sum((W @ x_b - t_b) ** 2)


def mean_loss(W, x, t):
    """The loss averaged over a batch, PyTorch's reduction="mean"."""
    return torch.mean(0.5 * torch.sum((x @ W.T - t) ** 2, dim=-1))


def torch_reference(W, x, t):
    """Per-sample gradients, W.grad by autograd and ygrad, from torch.

    x (..., B, I) and t (..., B, J) may have one leading dimension of
    batches, mapped over with vmap.
    """
    Wt, xt, tt = (torch.from_numpy(np.ascontiguousarray(a))
                  for a in (W, x, t))
    per_sample = func.vmap(func.grad(loss_one), in_dims=(None, 0, 0))
    batch_grad = func.grad(mean_loss)
    if x.ndim == 3:
        per_sample = func.vmap(per_sample, in_dims=(None, 0, 0))
        batch_grad = func.vmap(batch_grad, in_dims=(None, 0, 0))
    with torch.no_grad():
        ygrad = xt @ Wt.T - tt                       # dloss_b / dy_b
    return (per_sample(Wt, xt, tt).numpy(), batch_grad(Wt, xt, tt).numpy(),
            ygrad.numpy())


def diabetes(outputs):
    """Inputs with the bias column, targets, and a W halfway to the fit.

    outputs = 1: the response from the 10 features. outputs = 3: the
    response and the serum measurements s1 and s2 from the other 8.
    """
    X, y, names = load_diabetes()
    if outputs == 1:
        inputs, targets = X, y[:, None]
    else:
        out = [names.index("s1"), names.index("s2")]
        keep = [k for k in range(X.shape[1]) if k not in out]
        inputs, targets = X[:, keep], np.column_stack([y, X[:, out]])
    x = np.hstack([inputs, np.ones((len(y), 1))])
    fit = np.linalg.lstsq(x, targets, rcond=None)[0].T       # (J, I)
    return x, targets, fit


# ------------------------------------------------------------ the bounds


def per_sample_bound(W, x, t, ygrad):
    """E[..., b, j, i]: how far apart the two per-sample gradients may be."""
    S = np.abs(x) @ np.abs(W).T + np.abs(t)                  # (..., B, J)
    D = 2 * gamma(x.shape[-1] + 1) * S
    return ((D + 2 * U * (np.abs(ygrad) + D))[..., :, :, None]
            * np.abs(x)[..., :, None, :])


def variance_bound(ps, E, ddof):
    B = ps.shape[-3]
    d = ps - ps.mean(axis=-3, keepdims=True)
    ss = (d * d).sum(axis=-3)
    rounding = (2 * U * (np.abs(d) * np.abs(ps)).sum(axis=-3)
                + (B + 4) * U * ss
                + B * U * np.sqrt((ps * ps).sum(axis=-3) * ss))
    Emax = E.max(axis=-3)
    inputs = 4 * Emax * np.abs(d).sum(axis=-3) + 4 * B * Emax ** 2
    return (rounding + inputs) / (B - ddof)


def assert_within(got, ref, bound, what):
    got = np.asarray(got)
    assert got.shape == np.shape(ref), what
    err = np.abs(got - ref)
    assert np.all(err <= bound), (
        f"{what}: worst error / bound = {np.max(err / bound):.3g}")


# --------------------------------------------------------------- the data

CASES = {
    # phi = 0: where SGD starts, the residual is -target exactly
    "phi=0": lambda: (lambda x, t, fit: (np.zeros_like(fit), x, t))(
        *diabetes(1)),
    # halfway to the least-squares fit: residuals of both signs
    "half-fit": lambda: (lambda x, t, fit: (0.5 * fit, x, t))(*diabetes(1)),
    # three outputs, so the j index is exercised
    "3 outputs": lambda: (lambda x, t, fit: (0.5 * fit, x, t))(
        *diabetes(3)),
}


def batches(name, kind):
    W, x, t = CASES[name]()
    if kind == "all 442":
        return W, x, t
    # six minibatches of 16 patients, each drawn without replacement
    rng = np.random.default_rng(31230)
    idx = np.stack([rng.choice(len(x), 16, replace=False)
                    for _ in range(6)])
    return W, x[idx], t[idx]


@pytest.fixture(scope="module",
                params=[(c, k) for c in CASES for k in ("all 442",
                                                       "6 x 16")],
                ids=lambda p: f"{p[0]}, {p[1]}")
def data(request):
    W, x, t = batches(*request.param)
    ps, autograd, ygrad = torch_reference(W, x, t)
    return {"W": W, "x": x, "t": t, "ps": ps, "autograd": autograd,
            "ygrad": ygrad, "E": per_sample_bound(W, x, t, ygrad)}


# ---------------------------------------------------------------- tests


def test_per_sample_grad(data):
    got = linear.per_sample_grad(data["x"], data["ygrad"])
    assert_within(got, data["ps"], data["E"], "per_sample_grad")


def grad_bound(data):
    ps, E = data["ps"], data["E"]
    B = ps.shape[-3]
    return (2 * (B + 4) * U * np.abs(ps).mean(axis=-3)
            + E.mean(axis=-3))


def grad2_bound(data):
    ps, E = data["ps"], data["E"]
    B = ps.shape[-3]
    return (2 * (B + 6) * U * (ps * ps).mean(axis=-3)
            + (E * (2 * np.abs(ps) + E)).mean(axis=-3))


def test_grad_against_autograd_of_the_mean_loss(data):
    got = linear.grad(data["x"], data["ygrad"])
    assert_within(got, data["autograd"], grad_bound(data), "grad")


def test_grad2_against_the_mean_of_squares(data):
    ref = (torch.from_numpy(data["ps"]) ** 2).mean(dim=-3).numpy()
    got = linear.grad2(data["x"], data["ygrad"])
    assert_within(got, ref, grad2_bound(data), "grad2")


def test_moments(data):
    ref2 = (torch.from_numpy(data["ps"]) ** 2).mean(dim=-3).numpy()
    g, g2 = linear.moments(data["x"], data["ygrad"])
    assert_within(g, data["autograd"], grad_bound(data), "moments: grad")
    assert_within(g2, ref2, grad2_bound(data), "moments: grad2")


@pytest.mark.parametrize("ddof", [0, 1])
def test_variance_against_torch_var(data, ddof):
    ps = data["ps"]
    ref = torch.var(torch.from_numpy(ps), dim=-3, correction=ddof).numpy()
    got = linear.variance(data["x"], data["ygrad"], ddof)
    assert_within(got, ref, variance_bound(ps, data["E"], ddof),
                  f"variance, ddof={ddof}")


def test_noise_scale_against_torch(data):
    ps, E = data["ps"], data["E"]
    B, J, I = ps.shape[-3:]
    pst = torch.from_numpy(ps)
    # the unbiased estimates: tr Sigma from the per-coordinate unbiased
    # variances, |G|^2 = |mean|^2 - tr Sigma / B (E |mean|^2 =
    # |G|^2 + tr Sigma / B)
    trace = torch.var(pst, dim=-3, correction=1).sum(dim=(-2, -1))
    norm = (pst.mean(dim=-3) ** 2).sum(dim=(-2, -1)) - trace / B
    trace, norm = trace.numpy(), norm.numpy()

    n = B + I + J + 8
    rounding = (4 * n * U * (B + 1) / (B - 1)
                * (ps * ps).mean(axis=-3).sum(axis=(-2, -1)))
    Ebar = E.mean(axis=-3)
    d_trace = variance_bound(ps, E, 1).sum(axis=(-2, -1))
    d_norm = ((2 * np.abs(ps.mean(axis=-3)) * Ebar + Ebar ** 2)
              .sum(axis=(-2, -1)) + d_trace / B)
    b_trace, b_norm = rounding + d_trace, rounding + d_norm

    got = linear.noise_scale(data["x"], data["ygrad"])
    assert_within(got.trace_sigma, trace, b_trace, "trace_sigma")
    assert_within(got.grad_norm_sq, norm, b_norm, "grad_norm_sq")
    # first-order propagation of both errors into the quotient
    assert np.all(np.abs(norm) > 10 * b_norm)
    rel = b_trace / np.abs(trace) + b_norm / np.abs(norm)
    assert_within(got.B_simple, trace / norm, 2 * rel * np.abs(trace / norm),
                  "B_simple")


def test_bounds_are_tight_enough_to_fail(data):
    # Every bound is rounding-sized, far below the values compared, so
    # a scaling slip (ygrad / B, a missing square) cannot pass.
    ps = data["ps"]
    assert np.all(grad2_bound(data) < 1e-11 * (ps * ps).mean(axis=-3))
    assert np.all(grad_bound(data)
                  < 1e-11 * np.abs(ps).mean(axis=-3) + 1e-300)
    B = ps.shape[-3]
    wrong = linear.grad(data["x"], data["ygrad"] / B)        # mean-loss slip
    assert np.any(np.abs(wrong - data["autograd"]) > grad_bound(data))
