"""sgdprob.linear against brute-force references.

Every reference is the definition written with np.einsum on the
per-sample array ``g[b, j, i] = ygrad[b, j] x[b, i]``, evaluated in long
double from the very values handed to the kernels (float32 and float64
data are exact in long double).

Tolerances. A sum of n terms t_k in floating point with unit roundoff u
(half the machine epsilon) errs by at most about n u sum_k |t_k|, in any
order, blocked or with fused multiply-adds (Higham, Accuracy and
Stability of Numerical Algorithms, 2nd ed., section 3.1). The kernels
add a few more roundings: the scale alpha = fl(1/B), the product
alpha * sum, the store, and one or two for squaring the data; the bound
allows four (six where data are squared). The reference errs by the same
formula with the unit roundoff of long double, which is added. Where long
double is just double (some platforms) this doubles the bound, which is
still a rounding bound.
"""
import warnings

import numpy as np
import pytest

import sgdprob
from sgdprob import linear

DTYPES = [np.float32, np.float64]
U_REF = float(np.finfo(np.longdouble).eps) / 2


def unit(dtype):
    return float(np.finfo(dtype).eps) / 2


def ld(a):
    return np.asarray(a).astype(np.longdouble)


def per_sample_ref(x, ygrad):
    """g[..., b, j, i] = ygrad[..., b, j] x[..., b, i] in long double."""
    return np.einsum("...bj,...bi->...bji", ld(ygrad), ld(x))


def sum_bound(n, dtype, abs_sum, extra=4):
    """Rounding bound of a sum of n terms whose |terms| add to abs_sum."""
    return ((n + extra) * unit(dtype) + (n + extra) * U_REF) * abs_sum


def assert_within(got, ref, bound):
    got = np.asarray(got)
    assert got.shape == np.shape(ref)
    err = np.abs(ld(got) - ref)
    ok = err <= bound
    assert ok.all(), (
        f"{np.count_nonzero(~ok)} of {ok.size} outside the rounding "
        f"bound; worst error / bound = {np.max(err[~ok] / bound[~ok])}")


def with_layout(a, kind):
    """A view of a copy of a with the values of a and layout `kind`."""
    a = np.asarray(a)
    if kind == "C":
        return np.ascontiguousarray(a)
    if kind == "F":                 # the core matrix column-major
        return np.swapaxes(np.ascontiguousarray(np.swapaxes(a, -1, -2)),
                           -1, -2)
    if kind == "step":              # strides that are not a packing
        big = np.zeros(a.shape[:-2] + (2 * a.shape[-2], 3 * a.shape[-1]),
                       dtype=a.dtype)
        big[..., ::2, ::3] = a
        return big[..., ::2, ::3]
    if kind == "neg":               # negative strides on both core axes
        return np.ascontiguousarray(a[..., ::-1, ::-1])[..., ::-1, ::-1]
    raise ValueError(kind)


LAYOUTS = ["C", "F", "step", "neg"]
# (B, I, J): one sample; odd sizes; more rows than one block of 256
SHAPES = [(1, 1, 1), (5, 3, 4), (7, 1, 6), (300, 5, 3), (2, 17, 1)]


def data(rng, dtype, B, I, J, lead_x=(), lead_y=()):
    x = rng.normal(size=lead_x + (B, I)).astype(dtype)
    ygrad = rng.normal(size=lead_y + (B, J)).astype(dtype)
    return x, ygrad


# ---------------------------------------------------------------- grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,I,J", SHAPES)
def test_grad_matches_definition(rng, dtype, B, I, J):
    x, ygrad = data(rng, dtype, B, I, J)
    g = per_sample_ref(x, ygrad)
    got = linear.grad(x, ygrad)
    assert got.dtype == dtype
    assert_within(got, g.mean(axis=0),
                  sum_bound(B, dtype, np.abs(g).sum(axis=0) / B))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lx", LAYOUTS)
@pytest.mark.parametrize("ly", LAYOUTS)
def test_grad_any_strides(rng, dtype, lx, ly):
    x, ygrad = data(rng, dtype, 9, 4, 3)
    g = per_sample_ref(x, ygrad)
    got = linear.grad(with_layout(x, lx), with_layout(ygrad, ly))
    assert_within(got, g.mean(axis=0),
                  sum_bound(9, dtype, np.abs(g).sum(axis=0) / 9))


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_broadcasts_leading_dimensions(rng, dtype):
    x, ygrad = data(rng, dtype, 6, 3, 2, lead_x=(2, 1), lead_y=(4,))
    g = per_sample_ref(x, ygrad)            # (2, 4, 6, 2, 3)
    got = linear.grad(x, ygrad)
    assert got.shape == (2, 4, 2, 3)
    assert_within(got, g.mean(axis=-3),
                  sum_bound(6, dtype, np.abs(g).sum(axis=-3) / 6))


@pytest.mark.parametrize("lo", LAYOUTS)
def test_grad_writes_any_out(rng, lo):
    x, ygrad = data(rng, np.float64, 8, 5, 3)
    g = per_sample_ref(x, ygrad)
    out = with_layout(np.full((3, 5), np.nan), lo)
    got = linear.grad(x, ygrad, out=out)
    assert got is out
    assert_within(out, g.mean(axis=0),
                  sum_bound(8, np.float64, np.abs(g).sum(axis=0) / 8))


def test_grad_mean_of_per_sample_grad(rng):
    x, ygrad = data(rng, np.float64, 11, 4, 3)
    per = linear.per_sample_grad(x, ygrad)
    # per is exact up to one rounding per element; the mean adds B more
    assert_within(linear.grad(x, ygrad), ld(per).mean(axis=0),
                  sum_bound(11, np.float64,
                            np.abs(ld(per)).sum(axis=0) / 11, extra=6))


def test_grad_long_rows_go_in_blocks(rng):
    # a row of x is 6000 doubles, so a block holds fewer than 100 rows
    x, ygrad = data(rng, np.float64, 100, 6000, 2)
    x = with_layout(x, "step")              # not readable by the BLAS
    g = per_sample_ref(x, ygrad)
    bound = sum_bound(100, np.float64, np.abs(g).sum(axis=0) / 100)
    assert_within(linear.grad(x, ygrad), g.mean(axis=0), bound)
    g2 = (g * g).mean(axis=0)
    assert_within(linear.grad2(x, ygrad), g2,
                  sum_bound(100, np.float64, g2, extra=6))


# --------------------------------------------------------------- grad2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,I,J", SHAPES)
def test_grad2_matches_definition(rng, dtype, B, I, J):
    x, ygrad = data(rng, dtype, B, I, J)
    g = per_sample_ref(x, ygrad)
    ref = (g * g).mean(axis=0)
    got = linear.grad2(x, ygrad)
    assert got.dtype == dtype
    # terms are fl(fl(y^2) fl(x^2)): two more roundings than grad
    assert_within(got, ref, sum_bound(B, dtype, ref, extra=6))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lx,ly,lo", [("F", "step", "F"),
                                      ("neg", "C", "step"),
                                      ("step", "neg", "neg"),
                                      ("C", "F", "C")])
def test_grad2_any_strides(rng, dtype, lx, ly, lo):
    x, ygrad = data(rng, dtype, 13, 3, 5, lead_x=(2,))
    g = per_sample_ref(x, ygrad)
    ref = (g * g).mean(axis=-3)
    out = with_layout(np.zeros((2, 5, 3), dtype), lo)
    got = linear.grad2(with_layout(x, lx), with_layout(ygrad, ly), out=out)
    assert got is out
    assert_within(got, ref, sum_bound(13, dtype, ref, extra=6))


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad2_is_grad_squared_for_one_sample(rng, dtype):
    x, ygrad = data(rng, dtype, 1, 6, 4)
    g = linear.grad(x, ygrad)
    g2 = linear.grad2(x, ygrad)
    # g = fl(y x) and g2 = fl(fl(y^2) fl(x^2)) (1/B = 1 is exact);
    # fl(g)^2 and g2 both within 3 roundings of (y x)^2, so 6 apart
    u = unit(dtype)
    assert np.all(np.abs(ld(g2) - ld(g) ** 2) <= 6 * u * ld(g) ** 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad2_is_not_grad_squared(rng, dtype):
    x = np.array([[1.0], [1.0]], dtype)
    ygrad = np.array([[1.0], [-1.0]], dtype)
    assert linear.grad(x, ygrad)[0, 0] == 0.0
    assert linear.grad2(x, ygrad)[0, 0] == 1.0


# ------------------------------------------------------------- moments


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lx,ly", [("C", "C"), ("F", "neg"),
                                   ("step", "F")])
def test_moments_are_grad_and_grad2(rng, dtype, lx, ly):
    x, ygrad = data(rng, dtype, 300, 4, 3, lead_y=(2,))
    x, ygrad = with_layout(x, lx), with_layout(ygrad, ly)
    g, g2 = linear.moments(x, ygrad)
    ref = per_sample_ref(x, ygrad)
    bound1 = sum_bound(300, dtype, np.abs(ref).sum(axis=-3) / 300)
    ref2 = (ref * ref).mean(axis=-3)
    bound2 = sum_bound(300, dtype, ref2, extra=6)
    assert_within(g, ref.mean(axis=-3), bound1)
    assert_within(g2, ref2, bound2)
    # and so within twice the bounds of the separate functions
    assert_within(g, ld(linear.grad(x, ygrad)), 2 * bound1)
    assert_within(g2, ld(linear.grad2(x, ygrad)), 2 * bound2)


def test_moments_out(rng):
    x, ygrad = data(rng, np.float64, 5, 2, 3)
    out = (np.empty((3, 2)), with_layout(np.empty((3, 2)), "F"))
    g, g2 = linear.moments(x, ygrad, out=out)
    assert g is out[0] and g2 is out[1]
    ref = per_sample_ref(x, ygrad)
    assert_within(g2, (ref * ref).mean(axis=0),
                  sum_bound(5, np.float64, (ref * ref).mean(axis=0), 6))


# ----------------------------------------------------- per_sample_grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lx,ly", [("C", "C"), ("F", "step"),
                                   ("neg", "F")])
def test_per_sample_grad_is_the_outer_product(rng, dtype, lx, ly):
    x, ygrad = data(rng, dtype, 4, 5, 3, lead_x=(2, 1), lead_y=(3,))
    got = linear.per_sample_grad(with_layout(x, lx), with_layout(ygrad, ly))
    # each element is one product rounded once, as NumPy rounds it
    want = ygrad[..., :, :, None] * x[..., :, None, :]
    assert got.dtype == dtype and got.shape == (2, 3, 4, 3, 5)
    np.testing.assert_array_equal(got, want)


def test_per_sample_grad_strided_out(rng):
    x, ygrad = data(rng, np.float64, 3, 4, 2)
    big = np.zeros((3, 4, 8))
    got = linear.per_sample_grad(x, ygrad, out=big[:, ::2, ::-2])
    np.testing.assert_array_equal(got, ygrad[:, :, None] * x[:, None, :])
    np.testing.assert_array_equal(big[:, 1::2], 0.0)


# ------------------------------------------------------------ variance


def variance_bound(x, ygrad, ddof, dtype):
    """Rounding bound of the two-pass variance, from its data.

    With d_b = g_b - mean, the kernel's d_b errs by u |g_b| (the product)
    plus u |d_b| (the subtraction); the correction term removes the
    error of the mean to first order. So sum d_b^2 errs by about
    2 u sum |d_b| |g_b| + (B + 4) u sum d_b^2, in double (u = u64); the
    reference adds the same in long double, and a float32 result one
    rounding of itself.
    """
    g = per_sample_ref(x, ygrad)
    B = g.shape[-3]
    d = g - g.mean(axis=-3, keepdims=True)
    u = unit(np.float64) + U_REF
    core = (2 * u * (np.abs(d) * np.abs(g)).sum(axis=-3)
            + (B + 4) * u * (d * d).sum(axis=-3)) / (B - ddof)
    ref = (d * d).sum(axis=-3) / (B - ddof)
    return ref, core + unit(dtype) * ref


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,I,J", [s for s in SHAPES if s[0] > 1])
@pytest.mark.parametrize("ddof", [0, 1])
def test_variance_matches_definition(rng, dtype, B, I, J, ddof):
    x, ygrad = data(rng, dtype, B, I, J)
    ref, bound = variance_bound(x, ygrad, ddof, dtype)
    got = linear.variance(x, ygrad, ddof)
    assert got.dtype == dtype
    assert_within(got, ref, bound)


@pytest.mark.parametrize("dtype", DTYPES)
def test_variance_of_a_large_mean(rng, dtype):
    # gradients near 1e6 spread by about 1: E[g^2] - E[g]^2 in double
    # errs by about 1e12 * 1e-16 * B, beyond the bound, which scales
    # with the spread; float32 data are accumulated in double
    x = (1.0 + 1e-3 * rng.normal(size=(50, 3))).astype(dtype)
    ygrad = (1e6 + rng.normal(size=(50, 2))).astype(dtype)
    ref, bound = variance_bound(x, ygrad, 1, dtype)
    assert_within(linear.variance(x, ygrad, ddof=1), ref, bound)


@pytest.mark.parametrize("lx,ly,lo", [("F", "neg", "step"),
                                      ("step", "F", "neg"),
                                      ("neg", "step", "F")])
def test_variance_any_strides(rng, lx, ly, lo):
    x, ygrad = data(rng, np.float64, 70, 300, 40, lead_x=(2,))
    ref, bound = variance_bound(x, ygrad, 0, np.float64)
    out = with_layout(np.empty((2, 40, 300)), lo)
    got = linear.variance(with_layout(x, lx), with_layout(ygrad, ly),
                          out=out)
    assert got is out
    assert_within(got, ref, bound)


def test_variance_cancellation_float32():
    x = np.array([[1.0], [1.0]], np.float32)
    ygrad = np.array([[10000.0], [10000.5]], np.float32)
    got = linear.variance(x, ygrad)
    assert got.dtype == np.float32
    assert got[0, 0] == np.float32(0.0625)      # exact in binary


def test_variance_cancellation_float64():
    x = np.ones((3, 1))
    ygrad = np.array([[1e9], [1e9 + 1], [1e9 + 2]])
    # deviations -1, 0, 1 exactly: 2/3 up to the final division
    assert abs(linear.variance(x, ygrad)[0, 0] - 2 / 3) <= 2 ** -53
    assert linear.variance(x, ygrad, ddof=1)[0, 0] == 1.0


def test_variance_of_equal_gradients_is_zero(rng):
    x = np.tile(rng.normal(size=(1, 5)), (7, 1))
    ygrad = np.tile(rng.normal(size=(1, 3)), (7, 1))
    np.testing.assert_array_equal(linear.variance(x, ygrad, 1), 0.0)


# ---------------------------------------------------- forward, x.grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lw,lx,lo", [("C", "C", "C"), ("F", "step", "F"),
                                      ("neg", "F", "step"),
                                      ("step", "neg", "neg")])
def test_forward_matches_definition(rng, dtype, lw, lx, lo):
    W = rng.normal(size=(3, 1, 4, 5)).astype(dtype)      # (.., J, I)
    x = rng.normal(size=(2, 6, 5)).astype(dtype)         # (.., B, I)
    terms = np.einsum("...ji,...bi->...bji", ld(W), ld(x))
    out = with_layout(np.empty((3, 2, 6, 4), dtype), lo)
    got = linear.forward(with_layout(W, lw), with_layout(x, lx), out=out)
    assert got is out
    assert_within(got, terms.sum(axis=-1),
                  sum_bound(5, dtype, np.abs(terms).sum(axis=-1)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lw,ly,lo", [("C", "C", "C"), ("F", "step", "F"),
                                      ("neg", "F", "step"),
                                      ("step", "neg", "neg")])
def test_input_grad_matches_definition(rng, dtype, lw, ly, lo):
    W = rng.normal(size=(4, 5)).astype(dtype)            # (J, I)
    ygrad = rng.normal(size=(2, 300, 4)).astype(dtype)   # (.., B, J)
    terms = np.einsum("ji,...bj->...bij", ld(W), ld(ygrad))
    out = with_layout(np.empty((2, 300, 5), dtype), lo)
    got = linear.input_grad(with_layout(W, lw), with_layout(ygrad, ly),
                            out=out)
    assert got is out
    assert_within(got, terms.sum(axis=-1),
                  sum_bound(4, dtype, np.abs(terms).sum(axis=-1)))


def test_forward_input_grad_adjoint(rng):
    # <forward(W, x), ygrad> = <x, input_grad(W, ygrad)>, both sums of
    # B J I products
    W = rng.normal(size=(3, 4))
    x, ygrad = data(rng, np.float64, 5, 4, 3)
    lhs = np.sum(linear.forward(W, x) * ygrad)
    rhs = np.sum(x * linear.input_grad(W, ygrad))
    scale = np.einsum("ji,bi,bj->", np.abs(W), np.abs(x), np.abs(ygrad))
    assert abs(lhs - rhs) <= 2 * (60 + 4) * unit(np.float64) * scale


def test_forward_with_bias_column(rng):
    x = rng.normal(size=(4, 3))
    W = rng.normal(size=(2, 4))                 # last column: the bias
    x1 = np.concatenate([x, np.ones((4, 1))], axis=-1)
    terms = np.concatenate(
        [np.einsum("ji,bi->bji", ld(W[:, :3]), ld(x)),
         np.broadcast_to(ld(W[:, 3])[None, :, None], (4, 2, 1))], axis=-1)
    assert_within(linear.forward(W, x1), terms.sum(axis=-1),
                  sum_bound(4, np.float64, np.abs(terms).sum(axis=-1)))


def test_forward_empty_sum_is_zero():
    got = linear.forward(np.ones((3, 0)), np.ones((2, 0)))
    np.testing.assert_array_equal(got, np.zeros((2, 3)))


# --------------------------------------------------------- noise_scale


def noise_scale_ref(x, ygrad):
    g = per_sample_ref(x, ygrad)
    B = g.shape[-3]
    G = g.mean(axis=-3)
    G2 = (g * g).mean(axis=-3)
    trace = B / (B - 1) * (G2 - G * G).sum(axis=(-2, -1))
    norm = (B * G * G - G2).sum(axis=(-2, -1)) / (B - 1)
    # every quantity is a sum of at most B + I + J roundings of terms
    # bounded by sum G2 (and B G^2 <= B G2), times B / (B - 1)
    n = B + g.shape[-1] + g.shape[-2] + 8
    bound = (4 * n * (unit(np.float64) + U_REF) * (B + 1) / (B - 1)
             * G2.sum(axis=(-2, -1)))
    return trace, norm, bound


@pytest.mark.parametrize("dtype", DTYPES)
def test_noise_scale_matches_definition(rng, dtype):
    x = rng.normal(size=(3, 20, 4)).astype(dtype)
    ygrad = (0.5 + rng.normal(size=(20, 3))).astype(dtype)
    trace, norm, bound = noise_scale_ref(x, ygrad)
    got = linear.noise_scale(x, ygrad)
    assert got.B_simple.shape == (3,)
    assert_within(got.trace_sigma, trace, bound)
    assert_within(got.grad_norm_sq, norm, bound)
    # first-order propagation of both errors into the quotient
    rel = bound / np.abs(trace) + bound / np.abs(norm)
    assert np.all(np.abs(norm) > 10 * bound)
    assert_within(got.B_simple, trace / norm, rel * np.abs(trace / norm))


def test_noise_scale_small_example():
    got = linear.noise_scale(np.ones((2, 1)), np.array([[1.0], [4.0]]))
    # g = 1, 4: mean 2.5, tr(Sigma) = (1 - 4)^2 / 2, |G|^2 = 1 * 4
    assert got == (1.125, 4.5, 4.0)
    assert isinstance(got.B_simple, float)


def test_noise_scale_negative_and_infinite_as_they_come():
    x = np.ones((2, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        neg = linear.noise_scale(x, np.array([[1.0], [-1.0]]))
        inf = linear.noise_scale(x, np.array([[0.0], [2.0]]))
    # g = 1, -1: |G|^2 = 1 * (-1); g = 0, 2: |G|^2 = 0 * 2
    assert neg == (-2.0, 2.0, -1.0)
    assert inf.grad_norm_sq == 0.0 and inf.B_simple == np.inf


def test_noise_scale_estimates_are_unbiased():
    # R independent batches of B per-sample gradients g_b = G + noise
    # with known tr(Sigma) and |G|^2 (x = 1, so g_b = ygrad[b]); the
    # averages over batches must agree within 5 standard errors
    rng = np.random.default_rng(7)
    R, B = 4000, 8
    G = np.array([0.5, -1.0, 2.0])
    sigma = np.array([1.0, 0.5, 2.0])
    ygrad = G + sigma * rng.normal(size=(R, B, 3))
    got = linear.noise_scale(np.ones((R, B, 1)), ygrad)
    for est, truth in [(got.trace_sigma, np.sum(sigma ** 2)),
                       (got.grad_norm_sq, np.sum(G ** 2))]:
        se = est.std(ddof=1) / np.sqrt(R)
        assert abs(est.mean() - truth) <= 5 * se


# ------------------------------------------------------------ bad input


GRAD_LIKE = [linear.grad, linear.grad2, linear.moments, linear.variance,
             linear.per_sample_grad, linear.noise_scale]


@pytest.mark.parametrize("f", GRAD_LIKE)
def test_bad_x_and_ygrad(f):
    ok = np.ones((3, 2))
    with pytest.raises(TypeError, match="x"):
        f(ok.astype(complex), ok)
    with pytest.raises(TypeError, match="ygrad"):
        f(ok, np.full((3, 2), "a"))
    with pytest.raises(ValueError, match="x must have at least two"):
        f(np.ones(3), ok)
    with pytest.raises(ValueError, match="ygrad must have at least two"):
        f(ok, 1.0)
    with pytest.raises(ValueError, match="B = 3 rows .* ygrad has 4"):
        f(ok, np.ones((4, 2)))
    with pytest.raises(ValueError, match="leading dimensions"):
        f(np.ones((2, 3, 2)), np.ones((3, 3, 2)))


@pytest.mark.parametrize("f", [linear.grad, linear.grad2, linear.moments,
                               linear.variance, linear.noise_scale])
def test_empty_batch_raises(f):
    with pytest.raises(ValueError, match="B = 0"):
        f(np.ones((0, 2)), np.ones((0, 3)))


def test_per_sample_grad_of_empty_batch_is_empty():
    assert linear.per_sample_grad(np.ones((0, 2)),
                                  np.ones((0, 3))).shape == (0, 3, 2)


def test_unbiased_estimates_need_two_samples():
    x, ygrad = np.ones((1, 2)), np.ones((1, 3))
    with pytest.raises(ValueError, match="two"):
        linear.variance(x, ygrad, ddof=1)
    with pytest.raises(ValueError, match="two"):
        linear.noise_scale(x, ygrad)
    np.testing.assert_array_equal(linear.variance(x, ygrad), 0.0)


@pytest.mark.parametrize("ddof,exc", [(-1, ValueError),
                                      (np.nan, ValueError),
                                      ("1", TypeError), (True, TypeError),
                                      ([1], TypeError), (1j, TypeError)])
def test_bad_ddof(ddof, exc):
    with pytest.raises(exc, match="ddof"):
        linear.variance(np.ones((3, 2)), np.ones((3, 1)), ddof)


def test_fractional_ddof():
    x = np.ones((3, 1))
    ygrad = np.array([[0.0], [1.0], [2.0]])     # sum of squares 2
    assert linear.variance(x, ygrad, 0.5)[0, 0] == 2 / 2.5


def test_bad_W():
    with pytest.raises(ValueError, match="W has I = 3 .* x has 2"):
        linear.forward(np.ones((4, 3)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="W has J = 4 .* ygrad has 2"):
        linear.input_grad(np.ones((4, 3)), np.ones((5, 2)))
    with pytest.raises(TypeError, match="W"):
        linear.forward(np.ones((4, 3), dtype=object), np.ones((5, 3)))
    with pytest.raises(ValueError, match="W must have at least two"):
        linear.input_grad(np.ones(3), np.ones((5, 3)))


def test_sizes_beyond_the_blas_raise():
    # zero strides: no memory is touched before the check
    huge = np.broadcast_to(np.zeros((1, 1)), (1, 2 ** 31))
    with pytest.raises(ValueError, match="I = 2147483648"):
        linear.forward(huge, huge)
    with pytest.raises(ValueError, match="J = 2147483648"):
        linear.grad(np.zeros((1, 1)), huge)


def test_moments_out_must_be_a_pair():
    with pytest.raises(ValueError, match="out"):
        linear.moments(np.ones((2, 2)), np.ones((2, 2)), out=np.empty((2, 2)))


# ------------------------------------------------- raw gufuncs, no crash


def test_raw_gufuncs_registered():
    sig = {"linear_forward": "(j,i),(b,i)->(b,j)",
           "linear_input_grad": "(j,i),(b,j)->(b,i)",
           "linear_grad": "(b,i),(b,j)->(j,i)",
           "linear_per_sample_grad": "(b,i),(b,j)->(b,j,i)",
           "linear_grad2": "(b,i),(b,j)->(j,i)",
           "linear_moments": "(b,i),(b,j)->(j,i),(j,i)",
           "linear_variance": "(b,i),(b,j),()->(j,i)"}
    for name, s in sig.items():
        f = getattr(sgdprob.gufuncs, name)
        assert isinstance(f, np.ufunc) and f.signature == s


@pytest.mark.parametrize("name", ["linear_grad", "linear_grad2"])
def test_raw_empty_batch_is_nan_and_invalid(name):
    f = getattr(sgdprob.gufuncs, name)
    with np.errstate(invalid="ignore"):
        out = f(np.ones((0, 2)), np.ones((0, 3)))
    assert out.shape == (3, 2) and np.isnan(out).all()
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        f(np.ones((0, 2)), np.ones((0, 3)))


@pytest.mark.parametrize("ddof", [1.0, 5.0, -1.0, np.nan])
def test_raw_variance_bad_ddof_is_nan_and_invalid(ddof):
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        sgdprob.gufuncs.linear_variance(np.ones((1, 2)), np.ones((1, 3)),
                                        ddof)


def test_nan_input_stays_in_its_coordinates(rng):
    x, ygrad = data(rng, np.float64, 6, 4, 3)
    x[2, 1] = np.nan
    for f in (linear.grad, linear.grad2, linear.variance):
        with warnings.catch_warnings():
            warnings.simplefilter("error")      # NaN passes quietly
            got = f(x, ygrad)
        assert np.isnan(got[:, 1]).all()
        assert np.isfinite(np.delete(got, 1, axis=1)).all()


def test_integer_and_mixed_dtypes():
    x = np.array([[1, 2], [3, 4]], dtype=np.int16)
    ygrad = np.array([[1], [-1]], dtype=np.int8)
    assert linear.grad(x, ygrad).dtype == np.float32
    got = linear.grad(x.astype(np.int64), ygrad.astype(np.float32))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [[-1.0, -1.0]])


@pytest.mark.parametrize("B,I,J", [(3, 0, 2), (3, 2, 0)])
def test_empty_core_dimensions(B, I, J):
    x, ygrad = np.ones((B, I)), np.ones((B, J))
    for f in (linear.grad, linear.grad2, linear.variance):
        assert f(x, ygrad).shape == (J, I)
    g, g2 = linear.moments(x, ygrad)
    assert g.shape == g2.shape == (J, I)
    assert linear.per_sample_grad(x, ygrad).shape == (B, J, I)


def test_docstring_examples_run():
    import doctest
    result = doctest.testmod(linear, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_random_cases_all_functions(rng):
    # shapes, leading dimensions, layouts and dtypes drawn at random
    for _ in range(25):
        dtype = DTYPES[rng.integers(2)]
        B, I, J = (int(v) for v in rng.integers(1, 40, size=3))
        # leading shapes that broadcast: a common shape with some
        # dimensions set to 1, and y's possibly shorter
        common = tuple(int(v) for v in rng.integers(2, 4,
                                                    size=rng.integers(3)))
        lead_x, lead_y = (tuple(1 if rng.random() < 0.3 else d
                                for d in common) for _ in range(2))
        lead_y = lead_y[rng.integers(len(lead_y) + 1):]
        x, ygrad = data(rng, dtype, B, I, J, lead_x=lead_x, lead_y=lead_y)
        x = with_layout(x, LAYOUTS[rng.integers(4)])
        ygrad = with_layout(ygrad, LAYOUTS[rng.integers(4)])
        g = per_sample_ref(x, ygrad)
        mean = g.mean(axis=-3)
        bound = sum_bound(B, dtype, np.abs(g).sum(axis=-3) / B)
        mean2 = (g * g).mean(axis=-3)
        bound2 = sum_bound(B, dtype, mean2, extra=6)
        assert_within(linear.grad(x, ygrad), mean, bound)
        assert_within(linear.grad2(x, ygrad), mean2, bound2)
        g1, g2 = linear.moments(x, ygrad)
        assert_within(g1, mean, bound)
        assert_within(g2, mean2, bound2)
        np.testing.assert_array_equal(
            linear.per_sample_grad(x, ygrad),
            ygrad[..., :, :, None] * x[..., :, None, :])
        if B > 1:
            ref, vbound = variance_bound(x, ygrad, 1, dtype)
            assert_within(linear.variance(x, ygrad, 1), ref, vbound)
        W = with_layout(rng.normal(size=lead_y + (J, I)).astype(dtype),
                        LAYOUTS[rng.integers(4)])
        terms = np.einsum("...ji,...bi->...bji", ld(W), ld(x))
        assert_within(linear.forward(W, x), terms.sum(axis=-1),
                      sum_bound(I, dtype, np.abs(terms).sum(axis=-1)))
        terms = np.einsum("...ji,...bj->...bij", ld(W), ld(ygrad))
        assert_within(linear.input_grad(W, ygrad), terms.sum(axis=-1),
                      sum_bound(J, dtype, np.abs(terms).sum(axis=-1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_that_is_an_input(dtype):
    """out= naming an input (or a view of one) gives the same numbers as a
    fresh output: the kernels read their inputs while they write."""
    rng = np.random.default_rng(11)
    W = rng.normal(size=(4, 4)).astype(dtype)
    x = rng.normal(size=(4, 4)).astype(dtype)
    cases = [
        (linear.forward, (W, x)), (linear.input_grad, (W, x)),
        (linear.grad, (W, x)), (linear.grad2, (W, x)),
        (linear.variance, (W, x)),
    ]
    for func, args in cases:
        expected = func(*args)
        for k in range(2):
            inputs = [a.copy() for a in args]
            got = func(*inputs, out=inputs[k])
            assert got is inputs[k]
            np.testing.assert_array_equal(got, expected)
    expected = linear.moments(W, x)
    a, b = W.copy(), x.copy()
    got = linear.moments(a, b, out=(b, a))
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
