"""Monte Carlo runs of SGD and its Langevin model.

Three kinds of check:
- replay: the same seed drawn with Generator.standard_normal or
  Generator.integers drives a plain NumPy loop to the same states (to
  rounding), which pins down every draw and every arithmetic step;
- statistics: sample moments over independent replicas against the
  closed forms, within 5 Monte Carlo standard errors. The standard error
  of a covariance entry treats the products (x_ri - m_i)(x_rj - m_j) of
  the R replicas as R independent values: std / sqrt(R). Seeds are fixed,
  so a pass is reproducible; 5 standard errors make a false alarm on a
  fresh seed rarer than 1e-6 per entry;
- behaviour: bad input, warnings, Ctrl-C, the GIL.
"""
import doctest
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.linalg

import sgdprob
from sgdprob import analytic
from sgdprob.datasets import load_diabetes

EPS = np.finfo(float).eps


def spd(rng, lam):
    Q, _ = np.linalg.qr(rng.standard_normal((len(lam), len(lam))))
    H = (Q * lam) @ Q.T
    return (H + H.T) / 2


def psd(rng, d, rank):
    L = rng.standard_normal((d, rank))
    return L @ L.T


def cov_se(x):
    """Sample covariance of the rows of x and its standard errors."""
    R = len(x)
    dev = x - x.mean(axis=0)
    w = dev[:, :, None] * dev[:, None, :]
    return w.sum(axis=0) / (R - 1), w.std(axis=0, ddof=1) / np.sqrt(R)


def within(est, se, ref, k=5.0):
    bad = np.abs(est - ref) > k * se
    assert not bad.any(), (est, ref, se)


def assert_rounding(x, ref, rtol):
    scale = max(np.abs(ref).max(), 1.0)
    assert np.abs(x - ref).max() <= rtol * scale, np.abs(x - ref).max()


# --- replay in NumPy ----------------------------------------------------
#
# Rounding bound of a replay: each step adds a few d eps of relative
# rounding; |1 - eta lam| < 1 keeps old errors from growing, so after k
# steps the gap is below k d eps times the size of the states, about
# 1e-14 here. The root of Sigma1 from scipy.linalg.sqrtm (a Schur method)
# and the eigendecomposition inside sgdprob agree to about 1e-14 as well;
# 1e-12 relative covers both with room.
REPLAY_RTOL = 1e-12


@pytest.mark.parametrize("d, B, replicas, steps", [
    (1, 1, 5000, 3),        # two blocks of replicas, the last one partial
    (1, 4, 3, 40),
    (1, 5000, 2, 3),        # a batch larger than the normal buffer
    (3, 3, 1000, 4),
    (3, 1, 4, 40),
    (2, 3000, 2, 2),
])
def test_sgd_quadratic_replays_in_numpy(d, B, replicas, steps):
    rng = np.random.default_rng(100 + d)
    H = spd(rng, np.linspace(0.5, 2.0, d))
    S = psd(rng, d, d) + 0.1 * np.eye(d)
    phi0 = rng.standard_normal((replicas, d))
    eta = 0.2
    phi = sgdprob.sgd_quadratic(H, S, eta=eta, B=B, steps=steps,
                                replicas=replicas, phi0=phi0, rng=7)
    Z = np.random.default_rng(7).standard_normal((steps, replicas, B, d))
    root = scipy.linalg.sqrtm(S).real
    ref = phi0.copy()
    for k in range(steps):
        ref = ref - eta * (ref @ H + Z[k].mean(axis=1) @ root)
    assert phi.shape == (replicas, d)
    assert_rounding(phi, ref, REPLAY_RTOL)


def test_sgd_quadratic_singular_noise_replays():
    rng = np.random.default_rng(5)
    H = spd(rng, np.array([0.5, 1.0, 1.5]))
    S = psd(rng, 3, 1)                              # rank 1
    phi = sgdprob.sgd_quadratic(H, S, eta=0.3, B=2, steps=20, replicas=6,
                                phi0=[1.0, 0.0, -1.0], rng=8)
    Z = np.random.default_rng(8).standard_normal((20, 6, 2, 3))
    # S = v v^T: its symmetric root is v v^T / |v|
    w, V = scipy.linalg.eigh(S)
    v = V[:, -1] * np.sqrt(w[-1])
    root = np.outer(v, v) / np.linalg.norm(v)
    ref = np.tile([1.0, 0.0, -1.0], (6, 1))
    for k in range(20):
        ref = ref - 0.3 * (ref @ H + Z[k].mean(axis=1) @ root)
    assert_rounding(phi, ref, REPLAY_RTOL)


@pytest.mark.parametrize("d, replicas", [(1, 5000), (3, 700)])
def test_langevin_replays_in_numpy(d, replicas):
    rng = np.random.default_rng(200 + d)
    H = spd(rng, np.linspace(0.5, 2.0, d))
    S = psd(rng, d, d) + 0.1 * np.eye(d)
    eta, B, dt, steps = 0.3, 4, 0.05, 12
    phi = sgdprob.langevin(H, S, eta=eta, B=B, time=steps * dt, dt=dt,
                           replicas=replicas, phi0=1.5, rng=9)
    Z = np.random.default_rng(9).standard_normal((steps, replicas, d))
    root = scipy.linalg.sqrtm(S).real
    ref = np.full((replicas, d), 1.5)
    for k in range(steps):
        ref = ref - dt * ref @ H + np.sqrt(eta * dt / B) * Z[k] @ root
    assert_rounding(phi, ref, REPLAY_RTOL)


def least_squares_data(n=30, p=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, p)), rng.standard_normal(n)


@pytest.mark.parametrize("B", [1, 4])
def test_sgd_least_squares_replays_with_replacement(B):
    X, y = least_squares_data()
    steps, replicas, eta = 25, 3, 0.1
    phi = sgdprob.sgd_least_squares(X.T.copy().T, y, eta=eta, B=B,
                                    steps=steps, replicas=replicas, rng=3)
    rows = np.random.default_rng(3).integers(0, len(y),
                                             size=(steps, replicas, B))
    ref = np.zeros((replicas, X.shape[1]))
    for k in range(steps):
        for r in range(replicas):
            xb, yb = X[rows[k, r]], y[rows[k, r]]
            ref[r] -= eta * ((xb @ ref[r] - yb)[:, None] * xb).mean(axis=0)
    assert_rounding(phi, ref, REPLAY_RTOL)


@pytest.mark.parametrize("B", [1, 5, 30])
def test_sgd_least_squares_replays_without_replacement(B):
    X, y = least_squares_data()
    n = len(y)
    steps, replicas, eta = 10, 3, 0.1
    phi0 = np.arange(3.0)
    phi = sgdprob.sgd_least_squares(X, y, eta=eta, B=B, steps=steps,
                                    replicas=replicas, phi0=phi0,
                                    replace=False, rng=4)
    gen = np.random.default_rng(4)
    ref = np.tile(phi0, (replicas, 1))
    for k in range(steps):
        for r in range(replicas):
            perm = np.arange(n)
            for b in range(B):
                j = b + gen.integers(0, n - b)
                perm[b], perm[j] = perm[j], perm[b]
            xb, yb = X[perm[:B]], y[perm[:B]]
            assert len(set(perm[:B])) == B
            ref[r] -= eta * ((xb @ ref[r] - yb)[:, None] * xb).mean(axis=0)
    assert_rounding(phi, ref, REPLAY_RTOL)


def test_full_batch_without_replacement_is_gradient_descent():
    X, y = least_squares_data()
    n = len(y)
    phi = sgdprob.sgd_least_squares(X, y, eta=0.2, B=n, steps=50,
                                    replicas=3, replace=False, rng=0)
    ref = np.zeros(3)
    for _ in range(50):
        ref = ref - 0.2 * X.T @ (X @ ref - y) / n
    # every replica sums the same n rows, in a different order
    assert_rounding(phi, np.tile(ref, (3, 1)), REPLAY_RTOL)


@pytest.mark.parametrize("replace", [True, False])
def test_batch_noise_cov_replays(replace):
    G = np.random.default_rng(1).standard_normal((40, 3))
    B, K = 6, 50
    cov, se = sgdprob.batch_noise_cov(G, B, n_batches=K, replace=replace,
                                      rng=12)
    gen = np.random.default_rng(12)
    if replace:
        rows = gen.integers(0, 40, size=(K, B))
    else:
        rows = np.empty((K, B), dtype=int)
        for k in range(K):
            perm = np.arange(40)
            for b in range(B):
                j = b + gen.integers(0, 40 - b)
                perm[b], perm[j] = perm[j], perm[b]
            rows[k] = perm[:B]
    means = G[rows].mean(axis=1)
    assert_rounding(cov, np.cov(means.T, ddof=1), REPLAY_RTOL)
    w = (means - means.mean(0))[:, :, None] * (means - means.mean(0))[:, None]
    assert_rounding(se, w.std(axis=0, ddof=1) / np.sqrt(K), 1e-10)


# --- seeds --------------------------------------------------------------

RUNS = {
    "sgd_quadratic": lambda rng, **kw: sgdprob.sgd_quadratic(
        np.diag([1.0, 2.0]), np.eye(2), eta=0.1, B=3, steps=20,
        replicas=5, rng=rng, **kw),
    "langevin": lambda rng, **kw: sgdprob.langevin(
        np.diag([1.0, 2.0]), np.eye(2), eta=0.1, B=3, time=1.0, dt=0.05,
        replicas=5, rng=rng, **kw),
    "sgd_least_squares": lambda rng, **kw: sgdprob.sgd_least_squares(
        *least_squares_data(), eta=0.1, B=3, steps=20, replicas=5, rng=rng,
        **kw),
}


@pytest.mark.parametrize("name", RUNS)
def test_same_seed_same_result(name):
    run = RUNS[name]
    a, b = run(42), run(42)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, run(np.random.SeedSequence(42)))
    assert not np.array_equal(a, run(43))
    gen = np.random.default_rng(42)
    first, second = run(gen), run(gen)      # a Generator is advanced
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("name", RUNS)
def test_records_and_progress_do_not_change_the_stream(name):
    run = RUNS[name]
    final = run(42)
    rec = run(42, record_every=5)
    assert rec.shape == (20 // 5 + 1,) + final.shape
    np.testing.assert_array_equal(rec[-1], final)
    every = run(42, record_every=1)
    np.testing.assert_array_equal(every[::5], rec)
    np.testing.assert_array_equal(every[::3], run(42, record_every=3))
    pytest.importorskip("tqdm")
    np.testing.assert_array_equal(run(42, progress=True), final)


def test_records_start_at_phi0_and_skip_a_remainder():
    rec = sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, B=1, steps=10,
                                replicas=4, phi0=[[1.0], [2.0], [3.0],
                                                  [4.0]],
                                record_every=4, rng=0)
    assert rec.shape == (3, 4, 1)                   # steps 0, 4, 8
    np.testing.assert_array_equal(rec[0, :, 0], [1.0, 2.0, 3.0, 4.0])
    eight = sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, B=1, steps=8,
                                  replicas=4, phi0=[[1.0], [2.0], [3.0],
                                                    [4.0]], rng=0)
    np.testing.assert_array_equal(rec[2], eight)


def test_langevin_paths_depend_on_eta_over_B_only():
    rng = np.random.default_rng(6)
    H = spd(rng, np.array([0.5, 1.0, 3.0]))
    S = psd(rng, 3, 3)
    eta1 = 0.05
    paths = [sgdprob.langevin(H, S, eta=B * eta1, B=B, time=2.0, dt=0.02,
                              replicas=4, phi0=1.0, rng=21, record_every=1)
             for B in [1, 3, 8, 100]]
    # sqrt(eta dt / B) differs by rounding between the B: a few eps
    # relative in each step's noise, so REPLAY_RTOL again
    for p in paths[1:]:
        assert_rounding(p, paths[0], REPLAY_RTOL)
    assert paths[0].shape == (101, 4, 3)


# --- statistics against the closed forms --------------------------------

def test_sgd_quadratic_1d_stationary_variance():
    h, s2, eta, B = 1.0, 4.0, 0.5, 4
    # a = 1 - eta h = 0.5: after 60 steps the start is forgotten (a^120)
    phi = sgdprob.sgd_quadratic(h, s2, eta=eta, B=B, steps=60,
                                replicas=20000, rng=31)
    cov, se = cov_se(phi)
    within(cov, se, eta * s2 / (B * h * (2 - eta * h)))     # 1/3
    # the Langevin value 1/4 is about 14 standard errors away
    assert abs(cov[0, 0] - eta * s2 / (2 * B * h)) > 5 * se[0, 0]
    mean_se = phi.std(ddof=1) / np.sqrt(len(phi))
    assert abs(phi.mean()) < 5 * mean_se


def test_sgd_quadratic_stationary_covariance_3d():
    rng = np.random.default_rng(32)
    H = spd(rng, np.array([0.5, 1.0, 2.0]))
    S = psd(rng, 3, 2)
    eta, B = 0.3, 3
    # slowest factor 1 - 0.15: (0.85)^(2 * 200) ~ 1e-28
    phi = sgdprob.sgd_quadratic(H, S, eta=eta, B=B, steps=200,
                                replicas=8000, phi0=[1.0, 1.0, 1.0],
                                rng=33)
    cov, se = cov_se(phi)
    within(cov, se, analytic.sgd_stationary_cov(H, S, eta=eta, B=B))


def test_langevin_stationary_and_transient():
    rng = np.random.default_rng(34)
    H = spd(rng, np.array([0.5, 2.0]))
    S = psd(rng, 2, 2)
    eta, B, dt = 0.2, 2, 0.05
    phi0 = np.array([2.0, -1.0])
    # 600 steps: (1 - 0.025)^1200 ~ 1e-13 of the start remains
    rec = sgdprob.langevin(H, S, eta=eta, B=B, time=30.0, dt=dt,
                           replicas=6000, phi0=phi0, record_every=20,
                           rng=35)
    # at step 20 (t = 1): the exact moments of the scheme, by a plain loop
    A = np.eye(2) - dt * H
    mean, C = phi0.copy(), np.zeros((2, 2))
    for _ in range(20):
        mean, C = A @ mean, A @ C @ A.T + dt * eta * S / B
    cov, se = cov_se(rec[1])
    within(cov, se, C)
    m_se = rec[1].std(axis=0, ddof=1) / np.sqrt(6000)
    within(rec[1].mean(axis=0), m_se, mean)
    # and at the end, the stationary law of the scheme
    cov, se = cov_se(rec[-1])
    within(cov, se, analytic.euler_maruyama_stationary_cov(
        H, S, eta=eta, B=B, dt=dt))


def diabetes_grads():
    X, y, _ = load_diabetes()
    X1 = np.column_stack([X[:, [2, 3, 8]], np.ones(len(y))])
    phi = np.linalg.lstsq(X1, y, rcond=None)[0]
    return (X1 @ phi - y)[:, None] * X1


@pytest.mark.parametrize("B", [1, 4, 16])
def test_batch_noise_cov_is_sigma1_over_B(B):
    G = diabetes_grads()
    Sigma1 = np.cov(G.T, ddof=0)
    cov, se = sgdprob.batch_noise_cov(G, B, n_batches=20000, rng=40 + B)
    within(cov, se, Sigma1 / B)


@pytest.mark.parametrize("B", [4, 221])
def test_batch_noise_cov_without_replacement(B):
    G = diabetes_grads()
    n = len(G)
    Sigma1 = np.cov(G.T, ddof=0)
    cov, se = sgdprob.batch_noise_cov(G, B, n_batches=20000, replace=False,
                                      rng=50 + B)
    within(cov, se, Sigma1 / B * (n - B) / (n - 1))
    if B == 221:    # the factor 1/2 is 60 standard errors from 1
        assert np.all(np.abs(np.diag(cov) - np.diag(Sigma1) / B)
                      > 5 * np.diag(se))


def test_batch_noise_cov_whole_set_without_replacement():
    G = diabetes_grads()
    n = len(G)
    cov, se = sgdprob.batch_noise_cov(G, n, n_batches=100, replace=False,
                                      rng=0)
    # every batch is the whole set, summed in another order: the means
    # differ by rounding, n eps max|G|, so cov is at most its square
    bound = (n * EPS * np.abs(G).max()) ** 2
    assert np.abs(cov).max() <= bound
    with_repl, _ = sgdprob.batch_noise_cov(G, n, n_batches=100, rng=0)
    assert np.abs(with_repl).max() > 1e6 * bound


def test_batch_noise_cov_stderr_needs_many_batches():
    # Notes: at K = 2 stderr is 0 up to rounding; at K = 10 it is biased
    # low by about a quarter; from K = 100 on it is the spread of cov
    # over repeated runs to about 20 %, its own relative spread being
    # about sqrt(3.5 / K) on the diagonal and sqrt(2 / K) off it.
    G = np.random.default_rng(7).standard_normal((1000, 2))
    cov, se = sgdprob.batch_noise_cov(G, 4, n_batches=2, rng=0)
    assert np.all(se <= 1e-12 * np.abs(cov).max())
    R = 400
    for K, low, high in [(10, 0.61, 0.91), (100, 0.82, 1.18)]:
        runs = [sgdprob.batch_noise_cov(G, 4, n_batches=K, rng=1000 * K + r)
                for r in range(R)]
        covs = np.array([c for c, _ in runs])
        ses = np.array([s for _, s in runs])
        ratio = ses / covs.std(axis=0)
        # the mean ratio over R runs, expected 0.76 at K = 10 and 1 at
        # K = 100, has a standard error of about 0.03 (0.42 / sqrt(R)
        # from stderr, 1 / sqrt(2 R) relative from covs.std): the bounds
        # are 5 of them either side
        assert np.all((low < ratio.mean(axis=0))
                      & (ratio.mean(axis=0) < high)), (K, ratio.mean(0))
        if K == 100:
            spread = ratio.std(axis=0) / ratio.mean(axis=0)
            assert np.all(spread < 0.25), spread
            assert np.all(spread[[0, 1], [0, 1]] > 0.12), spread


def exact_sgd_least_squares_cov(X, y, eta, B):
    """Stationary covariance of SGD on least squares with replacement
    (derivation in test_analytic_sgd.exact_sgd_least_squares_cov)."""
    n, p = X.shape
    phi = np.linalg.lstsq(X, y, rcond=None)[0]
    G = (X @ phi - y)[:, None] * X
    H, S, Id = X.T @ X / n, G.T @ G / n, np.eye(p)
    xx = np.einsum("ri,rj->rij", X, X)
    K4 = np.einsum("rij,rkl->ikjl", xx, xx).reshape(p * p, p * p) / n
    step = (np.kron(Id, Id) - eta * (np.kron(H, Id) + np.kron(Id, H))
            + eta ** 2 * ((1 - 1 / B) * np.kron(H, H) + K4 / B))
    C = np.linalg.solve(np.eye(p * p) - step,
                        (eta ** 2 / B * S).reshape(-1)).reshape(p, p)
    return phi, (C + C.T) / 2, np.abs(np.linalg.eigvals(step)).max()


def test_sgd_least_squares_stationary_covariance():
    X, y, _ = load_diabetes()
    X1 = np.column_stack([X[:, [2, 3, 8]], np.ones(len(y))])
    eta, B, steps = 0.1, 4, 600
    phi_star, C, rho = exact_sgd_least_squares_cov(X1, y, eta, B)
    assert rho ** steps < 1e-12         # the covariance has converged
    phi = sgdprob.sgd_least_squares(X1, y, eta=eta, B=B, steps=steps,
                                    replicas=3000, phi0=phi_star, rng=60)
    cov, se = cov_se(phi)
    within(cov, se, C)
    m_se = phi.std(axis=0, ddof=1) / np.sqrt(len(phi))
    within(phi.mean(axis=0), m_se, phi_star)


# --- bad input and warnings ---------------------------------------------

GOOD_Q = dict(H=np.eye(2), Sigma1=np.eye(2), eta=0.1, B=2, steps=3,
              replicas=2)


@pytest.mark.parametrize("kw, match", [
    (dict(H=[[1.0, 0.5], [0.0, 1.0]]), "H must be symmetric"),
    (dict(H=[[np.nan, 0], [0, 1.0]]), "H must be finite"),
    (dict(H=np.ones((2, 3))), "H must be a square"),
    (dict(Sigma1=-np.eye(2)), "Sigma1 must be positive semi-definite"),
    (dict(Sigma1=np.eye(3)), r"Sigma1 must be \(2, 2\)"),
    (dict(Sigma1=[[1.0, np.inf], [np.inf, 1.0]]), "Sigma1 must be finite"),
    (dict(eta=0.0), "eta must be finite and > 0"),
    (dict(eta=-1.0), "eta must be finite and > 0"),
    (dict(eta=np.inf), "eta must be finite and > 0"),
    (dict(B=0), "B must be >= 1"),
    (dict(B=2.5), "B must be a whole number"),
    (dict(steps=0), "steps must be >= 1"),
    (dict(replicas=0), "replicas must be >= 1"),
    (dict(replicas=-3), "replicas must be >= 1"),
    (dict(phi0=[1.0, 2.0, 3.0]), "phi0 must be"),
    (dict(phi0=np.ones((3, 2))), "phi0 must be"),
    (dict(phi0=[np.nan, 0.0]), "phi0 must be finite"),
    (dict(record_every=0), "record_every must be >= 1"),
])
def test_sgd_quadratic_bad_input(kw, match):
    args = dict(GOOD_Q, **kw)
    H, S = args.pop("H"), args.pop("Sigma1")
    with pytest.raises(ValueError, match=match):
        sgdprob.sgd_quadratic(H, S, **args)


@pytest.mark.parametrize("kw, match", [
    (dict(time=0.0), "time must be finite and > 0"),
    (dict(dt=-0.1), "dt must be finite and > 0"),
    (dict(dt=np.nan), "dt must be finite and > 0"),
    (dict(time=1.05, dt=0.1), "whole number of steps"),
    (dict(time=0.01, dt=0.1), "whole number of steps"),
    (dict(B=0), "B must be >= 1"),
    (dict(replicas=0), "replicas must be >= 1"),
    (dict(Sigma1=[[1.0, 2.0], [2.0, 1.0]]), "Sigma1 must be positive"),
])
def test_langevin_bad_input(kw, match):
    args = dict(H=np.eye(2), Sigma1=np.eye(2), eta=0.1, B=2, time=1.0,
                dt=0.1, replicas=2)
    args.update(kw)
    H, S = args.pop("H"), args.pop("Sigma1")
    with pytest.raises(ValueError, match=match):
        sgdprob.langevin(H, S, **args)


def test_langevin_accepts_rounded_whole_steps():
    # 0.3 / 0.1 = 2.9999999999999996 in floating point
    phi = sgdprob.langevin(1.0, 1.0, eta=0.1, B=1, time=0.3, dt=0.1,
                           replicas=2, record_every=1, rng=0)
    assert phi.shape == (4, 2, 1)


@pytest.mark.parametrize("kw, match", [
    (dict(X=np.ones(5)), "X must be"),
    (dict(X=np.ones((0, 2)), y=np.ones(0)), "X must be"),
    (dict(y=np.ones(4)), r"y must be \(5,\)"),
    (dict(y=[np.nan] * 5), "y must be finite"),
    (dict(B=6, replace=False), "B = 6 is larger than the data set"),
    (dict(B=0), "B must be >= 1"),
    (dict(eta=0), "eta must be finite and > 0"),
    (dict(phi0=[1.0]), "phi0 must be"),
])
def test_sgd_least_squares_bad_input(kw, match):
    args = dict(X=np.arange(10.0).reshape(5, 2), y=np.ones(5), eta=0.01,
                B=2, steps=3, replicas=2)
    args.update(kw)
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(ValueError, match=match):
        sgdprob.sgd_least_squares(X, y, **args)


def test_sgd_least_squares_accepts_B_above_n_with_replacement():
    phi = sgdprob.sgd_least_squares(np.ones((5, 1)), np.ones(5), eta=0.1,
                                    B=50, steps=3, replicas=2, rng=0)
    assert phi.shape == (2, 1)


@pytest.mark.parametrize("kw, match", [
    (dict(G=np.ones(5)), "per_sample_grads must be"),
    (dict(G=np.ones((0, 2))), "per_sample_grads must be"),
    (dict(G=np.full((5, 2), np.inf)), "per_sample_grads must be finite"),
    (dict(B=0), "B must be >= 1"),
    (dict(n_batches=1), "n_batches must be >= 2"),
    (dict(B=6, replace=False), "B = 6 is larger than the data set"),
])
def test_batch_noise_cov_bad_input(kw, match):
    args = dict(G=np.arange(10.0).reshape(5, 2), B=2, n_batches=10)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        sgdprob.batch_noise_cov(args.pop("G"), args.pop("B"), **args)


@pytest.mark.parametrize("bad", [np.array([[1j]]), "a", None])
def test_non_real_input_is_type_error(bad):
    with pytest.raises(TypeError, match="H"):
        sgdprob.sgd_quadratic(bad, 1.0, eta=0.1, B=1, steps=1, replicas=1)


@pytest.mark.parametrize("kw", [dict(B=True), dict(B="2"), dict(eta="x"),
                                dict(steps=None), dict(progress=1),
                                dict(rng="seed")])
def test_wrong_types_are_type_errors(kw):
    args = dict(eta=0.1, B=1, steps=2, replicas=1)
    args.update(kw)
    with pytest.raises(TypeError):
        sgdprob.sgd_quadratic(1.0, 1.0, **args)


def test_divergent_eta_warns_and_does_not_crash():
    with pytest.warns(RuntimeWarning, match=r"eta \* largest eigenvalue"):
        phi = sgdprob.sgd_quadratic(np.diag([1.0, 3.0]), np.eye(2), eta=1.0,
                                    B=1, steps=2000, replicas=2, rng=0)
    assert not np.isfinite(phi).all()          # |1 - 3| = 2 per step
    with pytest.warns(RuntimeWarning, match="negative eigenvalue"):
        sgdprob.sgd_quadratic(np.diag([-1.0, 1.0]), np.eye(2), eta=0.1,
                              B=1, steps=2, replicas=2, rng=0)
    with pytest.warns(RuntimeWarning, match=r"dt \* largest eigenvalue"):
        sgdprob.langevin(4.0, 1.0, eta=0.1, B=1, time=1.0, dt=0.5,
                         replicas=2, rng=0)
    X = np.ones((5, 1)) * 3.0
    with pytest.warns(RuntimeWarning, match=r"eta \* largest eigenvalue"):
        sgdprob.sgd_least_squares(X, np.ones(5), eta=0.25, B=1, steps=2,
                                  replicas=2, rng=0)


@pytest.mark.parametrize("run", ["sgd_quadratic", "langevin"])
def test_semi_definite_H_from_rounding_does_not_warn(run):
    # A A^T with A of rank 2 is positive semi-definite; eigh gives its zero
    # eigenvalue as about -4e-16 here, which is rounding, not divergence.
    A = np.random.default_rng(1).standard_normal((3, 2))
    H = A @ A.T
    assert np.linalg.eigvalsh(H)[0] < 0                 # the case at hand
    kw = dict(steps=5) if run == "sgd_quadratic" else dict(time=0.05,
                                                           dt=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        phi = getattr(sgdprob, run)(H, np.eye(3), eta=0.05, B=2,
                                    replicas=4, rng=0, **kw)
    assert np.isfinite(phi).all()
    # a negative eigenvalue beyond rounding still warns
    with pytest.warns(RuntimeWarning, match="negative eigenvalue"):
        getattr(sgdprob, run)(H - 1e-6 * np.eye(3), np.eye(3), eta=0.05,
                              B=2, replicas=4, rng=0, **kw)


def test_collinear_least_squares_does_not_warn():
    # X^T X / n of collinear columns is singular; the eigensolver may give
    # its zero eigenvalue as -1e-16, which is no divergence: SGD does not
    # move along the null space of X.
    negative = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        Z = rng.standard_normal((50, 3))
        X = np.column_stack([Z, Z[:, 0] + Z[:, 1]])
        negative += np.linalg.eigvalsh(X.T @ X / 50)[0] < 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            phi = sgdprob.sgd_least_squares(X, rng.standard_normal(50),
                                            eta=0.05, B=4, steps=200,
                                            replicas=3, rng=seed)
        assert np.isfinite(phi).all()
        assert np.allclose(phi @ [1.0, 1.0, 0.0, -1.0], 0.0, atol=1e-12)
    if not negative:
        pytest.skip("this LAPACK gave no negative rounding to test")


def test_progress_without_tqdm_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(ImportError, match="tqdm"):
        sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, B=1, steps=2, replicas=1,
                              progress=True)


# --- Ctrl-C and the GIL -------------------------------------------------

LONG_RUN = textwrap.dedent("""
    import sys, time
    import sgdprob
    print("ready", flush=True)
    try:
        sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, B=1, steps=10**9,
                              replicas=1000, rng=0)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    phi = sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, B=1, steps=10,
                                replicas=2, rng=0)
    print("usable", phi.shape, flush=True)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_interrupts_a_long_run(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", LONG_RUN], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)                 # well inside the C loop by now
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        line = proc.stdout.readline().strip()
        elapsed = time.monotonic() - sent
        assert line == "interrupted", proc.stderr.read()
        assert elapsed < 1.0
        assert proc.stdout.readline().strip() == "usable (2, 1)"
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_gil_is_released_during_a_run():
    # The main thread keeps running Python while a long run goes in a
    # worker, and it watches the Generator's state advance. Were the GIL
    # held through the C loop, it could only ever see two states: the one
    # before the run and the one after.
    gen = np.random.default_rng(0)
    started = threading.Event()

    def run():
        started.set()
        sgdprob.sgd_quadratic(1.0, 1.0, eta=0.1, B=1, steps=2000,
                              replicas=10000, rng=gen)

    worker = threading.Thread(target=run)
    worker.start()
    started.wait()
    count, seen = 0, set()
    while worker.is_alive():
        count += 1
        seen.add(gen.bit_generator.state["state"]["state"])
    worker.join()
    assert count > 10 and len(seen) > 10


def test_docstring_examples():
    import sgdprob._montecarlo as module
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
    for name in ["batch_noise_cov", "sgd_quadratic", "langevin",
                 "sgd_least_squares"]:
        doc = getattr(sgdprob, name).__doc__
        for section in ["Parameters", "Returns", "Raises", "Notes",
                        "Examples"]:
            assert f"\n    {section}\n    ---" in doc, (name, section)

