"""Closed forms of SGD and its Langevin model on a quadratic, checked
against SciPy's Lyapunov solvers, Van Loan's matrix exponential, the
one-dimensional formulas and an independent least-squares computation."""
import re

import numpy as np
import pytest
import scipy.linalg

from sgdprob import analytic
from sgdprob.datasets import least_squares_grads, load_diabetes

EPS = np.finfo(float).eps


def spd(rng, lam):
    """A symmetric matrix with eigenvalues lam in a random basis."""
    Q, _ = np.linalg.qr(rng.standard_normal((len(lam), len(lam))))
    H = (Q * lam) @ Q.T
    return (H + H.T) / 2


def psd(rng, d, rank):
    """A random covariance of the given rank."""
    L = rng.standard_normal((d, rank))
    return L @ L.T


def lyapunov_tol(lam, step):
    """Rounding bound, relative to |C|, for a Lyapunov solution.

    Both solvers are backward stable, so each is off by a few d eps times
    the condition number of the Lyapunov operator in the eigenbasis, the
    ratio of its largest to smallest factor lam_i + lam_j - step lam_i
    lam_j; 100 d eps kappa leaves room for both and for the eigenvectors.
    """
    li, lj = lam[:, None], lam[None, :]
    f = np.abs(li + lj - step * li * lj)
    return 100 * len(lam) * EPS * f.max() / f.min()


def close(C, ref, rtol):
    scale = np.abs(ref).max()
    assert np.abs(C - ref).max() <= rtol * scale, (C, ref)


CASES = [  # (eigenvalues of H, rank of Sigma1, eta, B)
    (np.array([0.3, 1.0, 2.5]), 3, 0.2, 4),
    (np.array([0.05, 0.5, 1.0, 3.9]), 2, 0.5, 1),     # eta lam_max = 1.95
    (np.array([1.0]), 1, 1.9, 7),
    (np.array([1e-3, 1.0]), 1, 0.01, 32),
]


@pytest.mark.parametrize("lam, rank, eta, B", CASES)
def test_sgd_stationary_cov_solves_discrete_lyapunov(lam, rank, eta, B):
    rng = np.random.default_rng(1)
    H, S = spd(rng, lam), psd(rng, len(lam), rank)
    C = analytic.sgd_stationary_cov(H, S, eta=eta, B=B)
    A = np.eye(len(lam)) - eta * H
    ref = scipy.linalg.solve_discrete_lyapunov(A, eta ** 2 * S / B)
    close(C, ref, lyapunov_tol(lam, eta))
    np.testing.assert_array_equal(C, C.T)


@pytest.mark.parametrize("lam, rank, eta, B", CASES)
def test_langevin_stationary_cov_solves_continuous_lyapunov(lam, rank, eta,
                                                            B):
    rng = np.random.default_rng(2)
    H, S = spd(rng, lam), psd(rng, len(lam), rank)
    C = analytic.langevin_stationary_cov(H, S, eta=eta, B=B)
    ref = scipy.linalg.solve_continuous_lyapunov(H, eta * S / B)
    close(C, ref, lyapunov_tol(lam, 0.0))


@pytest.mark.parametrize("dt", [1e-3, 0.1, 0.45])
def test_euler_maruyama_stationary_cov_solves_its_lyapunov(dt):
    rng = np.random.default_rng(3)
    lam = np.array([0.2, 1.0, 4.0])
    H, S = spd(rng, lam), psd(rng, 3, 3)
    C = analytic.euler_maruyama_stationary_cov(H, S, eta=0.3, B=2, dt=dt)
    A = np.eye(3) - dt * H
    ref = scipy.linalg.solve_discrete_lyapunov(A, dt * 0.3 * S / 2)
    close(C, ref, lyapunov_tol(lam, dt))


def test_euler_maruyama_between_sgd_and_langevin():
    rng = np.random.default_rng(4)
    lam = np.array([0.2, 1.0, 4.0])
    H, S = spd(rng, lam), psd(rng, 3, 3)
    eta, B = 0.3, 2
    sgd = analytic.sgd_stationary_cov(H, S, eta=eta, B=B)
    em = analytic.euler_maruyama_stationary_cov(H, S, eta=eta, B=B, dt=eta)
    close(em, sgd, 8 * EPS * 10)
    # In the eigenbasis the two differ entry by entry by the factor
    # 1 / (1 - dt lam_i lam_j / (lam_i + lam_j)), and lam_i lam_j /
    # (lam_i + lam_j) <= lam_max / 2: so, in the Frobenius norm (which
    # the basis does not change), |C_em - C_lan| <= r / (1 - r) |C_lan|
    # with r = dt lam_max / 2.
    lan = analytic.langevin_stationary_cov(H, S, eta=eta, B=B)
    for dt in [1e-4, 1e-2, 0.2]:
        em = analytic.euler_maruyama_stationary_cov(H, S, eta=eta, B=B,
                                                    dt=dt)
        r = dt * lam.max() / 2
        gap = np.linalg.norm(em - lan) / np.linalg.norm(lan)
        assert gap <= r / (1 - r) * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("h, s2, eta, B", [
    (1.0, 4.0, 0.1, 2), (2.0, 3.0, 0.5, 4), (0.3, 1e-6, 6.0, 1),
    (1e3, 2.0, 1e-3, 64)])
def test_one_dimensional_formulas(h, s2, eta, B):
    sgd = analytic.sgd_stationary_cov([[h]], [[s2]], eta=eta, B=B)
    lan = analytic.langevin_stationary_cov(h, s2, eta=eta, B=B)
    # a few roundings each, so a few eps relative
    np.testing.assert_allclose(
        sgd, [[eta * s2 / (B * h * (2 - eta * h))]], rtol=8 * EPS)
    np.testing.assert_allclose(lan, [[eta * s2 / (2 * B * h)]],
                               rtol=8 * EPS)


def test_langevin_depends_on_eta_over_B_only():
    rng = np.random.default_rng(5)
    H, S = spd(rng, np.array([0.5, 2.0])), psd(rng, 2, 2)
    ref = analytic.langevin_stationary_cov(H, S, eta=0.01, B=1)
    for B in [2, 3, 16, 1000]:
        C = analytic.langevin_stationary_cov(H, S, eta=0.01 * B, B=B)
        close(C, ref, 8 * EPS * 10)


def van_loan(H, Qn, t):
    """int_0^t exp(-H s) Qn exp(-H s) ds by Van Loan's block exponential:
    with exp([[H, Qn], [0, -H]] t) = [[F, G], [0, exp(-H t)]], the
    integral is exp(-H t)^T G (C. Van Loan, IEEE TAC 23, 1978)."""
    d = len(H)
    blk = np.zeros((2 * d, 2 * d))
    blk[:d, :d] = H
    blk[:d, d:] = Qn
    blk[d:, d:] = -H
    E = scipy.linalg.expm(blk * t)
    return E[d:, d:] @ E[:d, d:]


@pytest.mark.parametrize("lam", [np.array([0.3, 1.0, 2.0]),
                                 np.array([0.0, 0.7, 1.5]),     # singular
                                 np.array([-0.4, 0.5, 1.0])])   # indefinite
def test_langevin_transient_against_van_loan(lam):
    rng = np.random.default_rng(6)
    H, S = spd(rng, lam), psd(rng, 3, 2)
    phi0 = np.array([1.0, -2.0, 0.5])
    eta, B = 0.2, 4
    t = np.array([0.0, 0.1, 1.0, 3.0])
    m = analytic.langevin_transient(H, S, eta=eta, B=B, t=t, phi0=phi0)
    assert m.mean.shape == (4, 3) and m.cov.shape == (4, 3, 3)
    for k, tk in enumerate(t):
        ref_cov = van_loan(H, eta * S / B, tk)
        ref_mean = scipy.linalg.expm(-H * tk) @ phi0
        # expm is accurate to about 1e-13 relative at these norms
        scale = max(np.abs(ref_cov).max(), 1e-300)
        assert np.abs(m.cov[k] - ref_cov).max() <= 1e-11 * scale
        np.testing.assert_allclose(m.mean[k], ref_mean, rtol=1e-11,
                                   atol=1e-12)
    np.testing.assert_array_equal(m.cov[0], 0.0)
    # Q Q^T phi0: two products with an orthogonal Q, a few d eps
    np.testing.assert_allclose(m.mean[0], phi0, rtol=0,
                               atol=8 * 3 * EPS * np.abs(phi0).max())


def test_langevin_transient_tends_to_stationary():
    rng = np.random.default_rng(7)
    lam = np.array([0.5, 1.0])
    H, S = spd(rng, lam), psd(rng, 2, 2)
    stat = analytic.langevin_stationary_cov(H, S, eta=0.1, B=2)
    # exp(-2 lam_min t) = exp(-100): below rounding
    late = analytic.langevin_transient(H, S, eta=0.1, B=2, t=100.0,
                                       phi0=[3.0, 3.0])
    close(late.cov, stat, 64 * EPS)
    assert np.abs(late.mean).max() <= 3 * np.exp(-50.0)


def test_langevin_transient_scalar_time_shapes():
    m = analytic.langevin_transient(np.eye(2), np.eye(2), eta=1.0, B=1,
                                    t=0.5)
    assert m.mean.shape == (2,) and m.cov.shape == (2, 2)
    # 1-D: (1 - exp(-2 h t)) / (2 h) with h = 1, noise 1
    np.testing.assert_allclose(np.diag(m.cov), -np.expm1(-1.0) / 2,
                               rtol=8 * EPS)


def diabetes_design():
    X, y, _ = load_diabetes()
    return np.column_stack([X, np.ones(len(y))]), y


def test_least_squares_noise_independent_computation():
    X1, y = diabetes_design()
    n = len(y)
    noise = analytic.least_squares_noise(X1, y)
    phi_ref = scipy.linalg.lstsq(X1, y)[0]
    G = least_squares_grads(X1, y, phi_ref, intercept=False)
    S_ref = np.cov(G.T, ddof=0)
    H_ref = X1.T @ X1 / n
    # phi* from two least-squares solvers agree to about kappa(X) eps
    # relative; H and Sigma1 are sums of n products, rounding n eps.
    kappa = np.linalg.cond(X1)
    np.testing.assert_allclose(noise.phi_star, phi_ref,
                               rtol=0, atol=100 * kappa * EPS
                               * np.abs(phi_ref).max())
    close(noise.H, H_ref, n * EPS)
    # Sigma1: sums of n products (n eps ~ 1e-13 relative), plus the gap
    # between the two phi*, which moves residuals of size ~50 by
    # |x| |dphi| ~ 1e-12: 1e-11 relative covers both.
    close(noise.Sigma1, S_ref, 1e-11)
    np.testing.assert_allclose(G.mean(axis=0), 0.0,
                               atol=1e-9 * np.abs(G).max())


def test_mandt_against_scipy():
    X1, y = diabetes_design()
    noise = analytic.least_squares_noise(X1, y)
    C = analytic.mandt_stationary_cov(X1, y, eta=0.01, B=8)
    ref = scipy.linalg.solve_continuous_lyapunov(noise.H,
                                                 0.01 * noise.Sigma1 / 8)
    lam = np.linalg.eigvalsh(noise.H)
    close(C, ref, lyapunov_tol(lam, 0.0))


def exact_sgd_least_squares_cov(X, y, eta, B):
    """Stationary covariance of SGD on least squares with replacement.

    With e = phi - phi*, one step is e <- (I - eta Hb) e - eta gb, where
    Hb and gb are the batch means of x x^T and of the gradients at phi*.
    E e -> 0, e is independent of the new batch, so
        C = E[(I - eta Hb) C (I - eta Hb)] + eta^2 Sigma1 / B,
        E[Hb C Hb] = (1 - 1/B) H C H + (1/B) mean_r x_r x_r^T C x_r x_r^T,
    a linear equation for vec(C), solved directly.
    """
    n, p = X.shape
    phi = np.linalg.lstsq(X, y, rcond=None)[0]
    G = (X @ phi - y)[:, None] * X
    S = G.T @ G / n
    H = X.T @ X / n
    Id = np.eye(p)
    xx = np.einsum("ri,rj->rij", X, X)
    K4 = np.einsum("rij,rkl->ikjl", xx, xx).reshape(p * p, p * p) / n
    HH = np.kron(H, H)
    step = (np.kron(Id, Id) - eta * (np.kron(H, Id) + np.kron(Id, H))
            + eta ** 2 * ((1 - 1 / B) * HH + K4 / B))
    vecC = np.linalg.solve(np.eye(p * p) - step,
                           (eta ** 2 / B * S).reshape(-1))
    C = vecC.reshape(p, p)
    return (C + C.T) / 2


def test_mandt_is_the_small_eta_limit():
    X, y, _ = load_diabetes()
    X1 = np.column_stack([X[:, [2, 3, 8]], np.ones(len(y))])
    # exact = mandt + eta L^-1(E[Hb C Hb]) + ..., L(C) = H C + C H, and
    # mandt is itself proportional to eta: the relative gap is
    # c eta + O(eta^2), so halving eta halves it up to O(eta) relative.
    gaps = []
    for eta in [2e-3, 1e-3]:
        exact = exact_sgd_least_squares_cov(X1, y, eta, 4)
        mandt = analytic.mandt_stationary_cov(X1, y, eta=eta, B=4)
        gaps.append(np.linalg.norm(exact - mandt) / np.linalg.norm(exact))
    lam_max = np.linalg.eigvalsh(X1.T @ X1 / len(y)).max()
    assert gaps[0] < 10 * 2e-3 * lam_max
    assert abs(gaps[1] / gaps[0] - 0.5) < 0.05


@pytest.mark.parametrize("func", ["sgd_stationary_cov",
                                  "langevin_stationary_cov"])
def test_not_positive_definite_raises(func):
    for lam in [[0.0, 1.0], [-1.0, 1.0]]:
        H = np.diag(lam)
        with pytest.raises(ValueError, match="H must be positive definite"):
            getattr(analytic, func)(H, np.eye(2), eta=0.1, B=1)


@pytest.mark.parametrize("eta", [2.0, 2.5, 100.0])
def test_divergent_eta_raises(eta):
    with pytest.raises(ValueError, match=r"eta \* largest eigenvalue"):
        analytic.sgd_stationary_cov(np.diag([0.5, 1.0]), np.eye(2),
                                    eta=eta, B=1)
    with pytest.raises(ValueError, match=r"dt \* largest eigenvalue"):
        analytic.euler_maruyama_stationary_cov(
            np.diag([0.5, 1.0]), np.eye(2), eta=0.1, B=1, dt=eta)


@pytest.mark.parametrize("kw, match", [
    (dict(H=[[1.0, 0.5], [0.0, 1.0]]), "H must be symmetric"),
    (dict(H=[[1.0, np.nan], [np.nan, 1.0]]), "H must be finite"),
    (dict(H=[1.0, 2.0]), "H must be a square"),
    (dict(H=np.ones((2, 3))), "H must be a square"),
    (dict(Sigma1=[[1.0, 2.0], [2.0, 1.0]]), "Sigma1 must be positive semi"),
    (dict(Sigma1=np.eye(3)), r"Sigma1 must be \(2, 2\)"),
    (dict(Sigma1=[[1.0, 0.1], [0.0, 1.0]]), "Sigma1 must be symmetric"),
    (dict(Sigma1=[[np.inf, 0], [0, 1.0]]), "Sigma1 must be finite"),
    (dict(eta=0.0), "eta must be finite and > 0"),
    (dict(eta=np.nan), "eta must be finite and > 0"),
    (dict(B=0), "B must be finite and > 0"),
    (dict(B=-2), "B must be finite and > 0"),
])
def test_bad_arguments(kw, match):
    args = dict(H=np.eye(2), Sigma1=np.eye(2), eta=0.1, B=2)
    args.update(kw)
    for func in [analytic.sgd_stationary_cov,
                 analytic.langevin_stationary_cov]:
        with pytest.raises(ValueError, match=match):
            func(args["H"], args["Sigma1"], eta=args["eta"], B=args["B"])


def test_bad_transient_arguments():
    with pytest.raises(ValueError, match="t must be >= 0"):
        analytic.langevin_transient(1.0, 1.0, eta=1, B=1, t=-1.0)
    with pytest.raises(ValueError, match="t must be finite"):
        analytic.langevin_transient(1.0, 1.0, eta=1, B=1, t=np.inf)
    with pytest.raises(ValueError, match="phi0"):
        analytic.langevin_transient(np.eye(2), np.eye(2), eta=1, B=1, t=1,
                                    phi0=[1.0, 2.0, 3.0])


def test_bad_least_squares_arguments():
    X, y = np.ones((5, 2)), np.ones(5)
    with pytest.raises(ValueError, match=r"y must be \(5,\)"):
        analytic.least_squares_noise(X, y[:4])
    with pytest.raises(ValueError, match="X must be"):
        analytic.least_squares_noise(np.ones(5), y)
    with pytest.raises(ValueError, match="X must be finite"):
        analytic.least_squares_noise(np.full((5, 2), np.nan), y)
    with pytest.raises(ValueError, match=r"X\^T X / n is singular"):
        analytic.mandt_stationary_cov(X, y + np.arange(5), eta=0.1, B=1)


@pytest.mark.parametrize("eta, B", [(0.01, 1), (0.1, 4), (0.64, 64),
                                    (0.3, 2.5)])
def test_sgd_least_squares_stationary_cov_against_direct_solve(eta, B):
    X, y, _ = load_diabetes()
    X1 = np.column_stack([X[:, :4], np.ones(len(y))])
    C = analytic.sgd_least_squares_stationary_cov(X1, y, eta=eta, B=B)
    expected = exact_sgd_least_squares_cov(X1, y, eta, B)
    # two solves of one well-conditioned 25 x 25 system
    np.testing.assert_allclose(C, expected, rtol=1e-10,
                               atol=1e-10 * np.abs(expected).max())
    assert np.all(np.linalg.eigvalsh(C) > 0)


def test_sgd_least_squares_stationary_cov_tends_to_mandt():
    X, y, _ = load_diabetes()
    X1 = np.column_stack([X[:, :4], np.ones(len(y))])
    gaps = []
    for eta in [2e-3, 1e-3]:
        C = analytic.sgd_least_squares_stationary_cov(X1, y, eta=eta, B=4)
        m = analytic.mandt_stationary_cov(X1, y, eta=eta, B=4)
        gaps.append(np.linalg.norm(C - m) / np.linalg.norm(m))
    # the gap is c eta + O(eta^2): halving eta halves it
    assert abs(gaps[1] / gaps[0] - 0.5) < 0.05


@pytest.mark.parametrize("eta, B", [(1.5, 1), (3.0, 64)])
def test_sgd_least_squares_stationary_cov_divergent(eta, B):
    X, y, _ = load_diabetes()
    X1 = np.column_stack([X[:, :4], np.ones(len(y))])
    with pytest.raises(ValueError, match="diverges"):
        analytic.sgd_least_squares_stationary_cov(X1, y, eta=eta, B=B)


@pytest.mark.parametrize("kw, match", [
    (dict(eta=0.0), "eta must be"), (dict(eta=np.nan), "eta must be"),
    (dict(B=0), "B must be"), (dict(B=-2), "B must be"),
])
def test_sgd_least_squares_stationary_cov_bad_arguments(kw, match):
    X, y, _ = load_diabetes()
    args = dict(eta=0.1, B=4)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        analytic.sgd_least_squares_stationary_cov(X[:, :3], y, **args)


def _fewer_rows():
    return np.random.default_rng(1).normal(size=(3, 5))


def _equal_columns():
    return np.ones((5, 2))


def _sum_column():
    # the third column is the sum of the first two, up to rounding: the
    # smallest eigenvalue of X^T X / n comes out near +-1e-16, not 0
    X = np.random.default_rng(2).normal(size=(40, 2)) * [0.1, 3.0]
    return np.column_stack([X, X[:, 0] + X[:, 1]])


@pytest.mark.parametrize("func", ["mandt_stationary_cov",
                                  "sgd_least_squares_stationary_cov"])
@pytest.mark.parametrize("make_X, why", [
    (_fewer_rows, r"X has fewer rows than columns \(3 < 5\)"),
    (_equal_columns, "the columns of X are collinear"),
    (_sum_column, "the columns of X are collinear"),
])
def test_singular_X_message_names_X(func, make_X, why):
    # the user passed X, not H: the message says what is wrong with X
    X = make_X()
    y = np.arange(len(X), dtype=float)
    with pytest.raises(ValueError) as info:
        getattr(analytic, func)(X, y, eta=0.1, B=1)
    message = str(info.value)
    assert message.startswith(
        "X^T X / n is singular or numerically singular: ")
    assert re.search(why, message)
    assert "is zero up to rounding" in message
    assert "there is no stationary covariance" in message
    assert "H must" not in message


def test_full_rank_X_is_accepted():
    # the same check passes a well-conditioned X of few rows
    X = _fewer_rows().T                   # (5, 3)
    y = np.arange(5.0)
    C = analytic.sgd_least_squares_stationary_cov(X, y, eta=0.1, B=1)
    assert np.all(np.linalg.eigvalsh(C) > 0)
