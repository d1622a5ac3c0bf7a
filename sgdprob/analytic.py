"""Closed forms that the kernels of sgdprob are checked against.

Running averages of a constant input ``x_t = c`` (finite horizon ``N``):

- :func:`leaky_sum_of_constant`  ``N c (1 - r^t) + r^t y_0``, ``r = 1 - 1/N``
- :func:`leaky_sum_limit`        ``N c``, its limit as ``t -> inf``
- :func:`ema_of_constant`        ``c (1 - r^t) + r^t mu_0``
- :func:`warmup_mean_of_constant` ``c`` for every ``t >= 1``

and, on any input, :func:`leaky_sum_from_ema`: ``y_t = N mu_t``.

Powers ``r^t`` are evaluated as ``exp(t log1p(-1/N))`` and ``1 - r^t`` as
``-expm1(t log1p(-1/N))``, so the forms keep full relative accuracy for
horizons as large as ``N = 1e15``, where ``1 - 1/N`` itself would lose
most of its digits.

SGD and its Langevin model on ``L(Phi) = 1/2 Phi^T H Phi`` with
per-sample gradient noise of covariance ``Sigma1``, learning rate ``eta``
and batch size ``B`` (the simulations are :func:`sgdprob.sgd_quadratic`
and :func:`sgdprob.langevin`):

- :func:`sgd_stationary_cov`       ``C = A C A^T + eta^2 Sigma1 / B``,
  ``A = I - eta H``
- :func:`langevin_stationary_cov`  ``H C + C H = eta Sigma1 / B``
- :func:`euler_maruyama_stationary_cov`  the Langevin model's scheme at
  step ``dt``: the first equation with ``dt`` for ``eta`` and noise
  ``dt eta Sigma1 / B``
- :func:`langevin_transient`       mean and covariance at time ``t``
- :func:`least_squares_noise`, :func:`mandt_stationary_cov`  the
  Langevin prediction for SGD on least squares (Mandt, Hoffman and Blei
  2017)
- :func:`sgd_least_squares_stationary_cov`  the exact stationary
  covariance of SGD on least squares, which that prediction approximates

All of them work in the eigenbasis ``H = Q diag(lam) Q^T``, where the
Lyapunov equations decouple entry by entry.
"""
import collections

import numpy as np

from . import _quadratic
from ._checks import real_array, whole_numbers

__all__ = ["leaky_sum_of_constant", "leaky_sum_limit", "ema_of_constant",
           "warmup_mean_of_constant", "leaky_sum_from_ema",
           "sgd_stationary_cov", "langevin_stationary_cov",
           "euler_maruyama_stationary_cov", "langevin_transient",
           "least_squares_noise", "mandt_stationary_cov",
           "sgd_least_squares_stationary_cov"]


def _real(value, name):
    """value as a float64 array, or TypeError/ValueError naming it."""
    return real_array(value, name).astype(np.float64, copy=False)


def _finite_N(N, *, allow_inf=False):
    N = _real(N, "N")
    bad = ~((N >= 1.0) & (np.isfinite(N) | allow_inf))
    if bad.any():
        rule = "N must be >= 1" if allow_inf else "N must be finite and >= 1"
        raise ValueError(f"{rule}; got {N[bad].flat[0]!r}")
    return N


def _steps(t, *, low=0):
    """t as float64: whole numbers of steps, >= low."""
    return whole_numbers(t, "t", low=low).astype(np.float64)


def _decay(N, t):
    """(r^t, 1 - r^t) with r = 1 - 1/N, both to full relative accuracy."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log1p(-1.0 / N)              # -inf when N = 1
        e = np.where(t == 0, 0.0, t * log_r)    # r^0 = 1, even when r = 0
    return np.exp(e), -np.expm1(e)


def leaky_sum_of_constant(c, N, t, initial=0.0):
    """Leaky sum of a constant input after ``t`` steps.

    With ``x_t = c`` and ``r = 1 - 1/N``, ``y_t = r y_{t-1} + c`` unrolls
    to the geometric series ``c (1 + r + ... + r^(t-1)) + r^t y_0``:

        ``y_t = N c (1 - r^t) + r^t y_0``

    Parameters
    ----------
    c : float or array_like
        The constant input.
    N : float or array_like
        Horizon, finite and ``>= 1``.
    t : int or array_like
        Steps taken, ``>= 0``.
    initial : float or array_like, optional
        ``y_0``. Default 0.

    Returns
    -------
    y_t : ndarray or float
        Broadcast over the arguments.

    Examples
    --------
    >>> from sgdprob import analytic
    >>> float(analytic.leaky_sum_of_constant(1.0, 2.0, 3))
    1.75
    """
    N = _finite_N(N)
    t = _steps(t)
    p, q = _decay(N, t)
    c, initial = _real(c, "c"), _real(initial, "initial")
    with np.errstate(invalid="ignore"):     # inf * 0 at t = 0, not used
        return np.where(t == 0, initial, N * c * q + p * initial)[()]


def leaky_sum_limit(c, N):
    """Limit of the leaky sum of a constant input: ``N c``.

    A limit ``y`` must be a fixed point of the update,
    ``y = (1 - 1/N) y + c``, so ``y / N = c``; the update is a contraction
    for ``N > 1`` finite, so the limit exists (for ``N = 1`` the sum is
    ``c`` from the first step).

    Parameters
    ----------
    c : float or array_like
        The constant input.
    N : float or array_like
        Horizon, finite and ``>= 1``.

    Returns
    -------
    limit : ndarray or float

    Examples
    --------
    >>> from sgdprob import analytic
    >>> float(analytic.leaky_sum_limit(3.0, 10.0))
    30.0
    """
    return _finite_N(N) * _real(c, "c")


def ema_of_constant(c, N, t, initial=0.0):
    """Exponential moving average of a constant input after ``t`` steps.

        ``mu_t = c (1 - r^t) + r^t mu_0``,  ``r = 1 - 1/N``

    The start-up bias towards ``mu_0`` decays as ``r^t``, about
    ``exp(-t / N)``.

    Parameters
    ----------
    c : float or array_like
        The constant input.
    N : float or array_like
        Horizon, finite and ``>= 1``.
    t : int or array_like
        Steps taken, ``>= 0``.
    initial : float or array_like, optional
        ``mu_0``. Default 0.

    Returns
    -------
    mu_t : ndarray or float

    Examples
    --------
    >>> from sgdprob import analytic
    >>> float(analytic.ema_of_constant(1.0, 2.0, 3))
    0.875
    """
    N = _finite_N(N)
    t = _steps(t)
    p, q = _decay(N, t)
    c, initial = _real(c, "c"), _real(initial, "initial")
    with np.errstate(invalid="ignore"):     # inf * 0 at t = 0, not used
        return np.where(t == 0, initial, c * q + p * initial)[()]


def warmup_mean_of_constant(c, N, t):
    """Warm-up mean of a constant input: ``c`` at every ``t >= 1``.

    By induction: ``y_1 = x_1 = c``, and if ``y_{t-1} = c`` then
    ``y_t = (1 - 1/m) c + c / m = c`` for any ``m = min(t, N)``.

    Parameters
    ----------
    c : float or array_like
        The constant input.
    N : float or array_like
        Horizon, ``>= 1``, ``inf`` allowed (the answer does not depend
        on it).
    t : int or array_like
        Steps taken, ``>= 1``.

    Returns
    -------
    y_t : ndarray or float
        ``c`` broadcast against ``N`` and ``t``.

    Examples
    --------
    >>> from sgdprob import analytic
    >>> analytic.warmup_mean_of_constant(5.0, 10.0, [1, 2, 100])
    array([5., 5., 5.])
    """
    N = _finite_N(N, allow_inf=True)
    t = _steps(t, low=1)    # y_0 is not defined by the rule
    return np.broadcast_arrays(_real(c, "c"), N, t)[0].copy()


def leaky_sum_from_ema(mu, N):
    """The leaky sum from the moving average of the same input: ``N mu``.

    Multiplying the EMA update ``mu_t = (1 - 1/N) mu_{t-1} + x_t / N`` by
    ``N`` gives the leaky-sum update for ``y_t = N mu_t``; so on any input,
    ``y_t = N mu_t`` when ``y_0 = N mu_0``. In words, the leaky sum is the
    running average of ``N x_t``.

    Parameters
    ----------
    mu : array_like
        Output of :func:`sgdprob.ema`.
    N : float or array_like
        Its horizon, finite and ``>= 1``.

    Returns
    -------
    y : ndarray

    Examples
    --------
    >>> import numpy as np
    >>> import sgdprob
    >>> from sgdprob import analytic
    >>> x = np.array([3.0, -1.0, 2.0])
    >>> bool(np.allclose(analytic.leaky_sum_from_ema(sgdprob.ema(x, 4.0), 4.0),
    ...                  sgdprob.leaky_sum(x, 4.0)))
    True
    """
    return _finite_N(N) * _real(mu, "mu")


# SGD and its Langevin model on a quadratic.

Moments = collections.namedtuple("Moments", ["mean", "cov"])
Moments.__doc__ = """Mean and covariance of Phi(t)."""

LeastSquaresNoise = collections.namedtuple(
    "LeastSquaresNoise", ["phi_star", "H", "Sigma1"])
LeastSquaresNoise.__doc__ = """\
The quadratic model of SGD on least squares at its optimum.

phi_star : ndarray, shape (p,)
    The least-squares solution.
H : ndarray, shape (p, p)
    The Hessian ``X^T X / n`` of the mean loss.
Sigma1 : ndarray, shape (p, p)
    Covariance (``ddof=0``) of the per-sample gradients at `phi_star`.
"""


def _quadratic_model(H, Sigma1, eta, B):
    """(lam, Q, q): eigenbasis of H and the noise eta Q^T Sigma1 Q / B."""
    lam, Q = _quadratic.hessian(H)
    S = _quadratic.noise(Sigma1, lam.shape[0])
    eta = _quadratic.positive(eta, "eta")
    B = _quadratic.positive(B, "B")
    return lam, Q, (eta / B) * _quadratic.in_basis(Q, S)


def _from_basis(Q, Cp):
    C = Q @ Cp @ Q.T
    return (C + C.T) / 2


def _discrete_stationary(lam, Q, q, step, step_name, what):
    """Stationary C of psi <- (1 - step lam) psi + noise of cov step q."""
    _quadratic.positive_definite(lam)
    top = step * lam[-1]
    if top >= 2:
        raise ValueError(
            f"{step_name} * largest eigenvalue of H = {top:.6g} >= 2: "
            f"{what} diverges and has no stationary law")
    li, lj = lam[:, None], lam[None, :]
    # step^2 q / (1 - (1 - step li)(1 - step lj)), divided through by step
    return _from_basis(Q, q / (li + lj - step * li * lj))


def sgd_stationary_cov(H, Sigma1, *, eta, B):
    """Stationary covariance of SGD on a quadratic.

    SGD on ``1/2 Phi^T H Phi`` with batch noise of covariance
    ``Sigma1 / B`` is ``Phi <- A Phi - eta xi``, ``A = I - eta H``; its
    stationary covariance solves the discrete Lyapunov equation

        ``C = A C A^T + eta^2 Sigma1 / B``.

    Parameters
    ----------
    H : array_like, shape (d, d)
        Hessian, symmetric positive definite (a scalar is 1 x 1).
    Sigma1 : array_like, shape (d, d)
        Covariance of one per-sample gradient, symmetric positive
        semi-definite.
    eta : float
        Learning rate, with ``0 < eta lam_max < 2``.
    B : float
        Batch size, > 0.

    Returns
    -------
    C : ndarray, shape (d, d)

    Raises
    ------
    ValueError
        If `H` is not positive definite, ``eta lam_max >= 2`` (SGD
        diverges), or a matrix is not symmetric, finite or of matching
        shape, or `Sigma1` is not positive semi-definite.

    Notes
    -----
    In the eigenbasis ``H = Q diag(lam) Q^T``, with ``q = Q^T Sigma1 Q``,
    the equation decouples:

        ``C' = eta q / (B (lam_i + lam_j - eta lam_i lam_j))``,
        ``C = Q C' Q^T``.

    In one dimension, ``eta sigma^2 / (B h (2 - eta h))``: as ``eta -> 0``
    the Langevin value ``eta sigma^2 / (2 B h)``, and larger for finite
    ``eta``.

    Examples
    --------
    >>> from sgdprob import analytic
    >>> float(analytic.sgd_stationary_cov(2.0, 3.0, eta=0.5, B=4)[0, 0])
    0.1875
    """
    lam, Q, q = _quadratic_model(H, Sigma1, eta, B)
    return _discrete_stationary(lam, Q, q, float(eta), "eta", "SGD")


def langevin_stationary_cov(H, Sigma1, *, eta, B):
    """Stationary covariance of the Langevin model of SGD.

    ``dPhi = -H Phi dt + (eta Sigma1 / B)^(1/2) dW`` has the stationary
    covariance that solves the continuous Lyapunov equation

        ``H C + C H = eta Sigma1 / B``.

    Parameters
    ----------
    H : array_like, shape (d, d)
        Hessian, symmetric positive definite.
    Sigma1 : array_like, shape (d, d)
        Covariance of one per-sample gradient, symmetric positive
        semi-definite.
    eta : float
        Learning rate, > 0.
    B : float
        Batch size, > 0.

    Returns
    -------
    C : ndarray, shape (d, d)

    Raises
    ------
    ValueError
        If `H` is not positive definite, or a matrix is not symmetric,
        finite or of matching shape, or `Sigma1` is not positive
        semi-definite.

    Notes
    -----
    In the eigenbasis of `H`, ``C' = eta q / (B (lam_i + lam_j))`` with
    ``q = Q^T Sigma1 Q``; in one dimension ``eta sigma^2 / (2 B h)``.
    It depends on ``eta / B`` alone: with ``eta = B eta'`` it is the same
    for every batch size.

    Examples
    --------
    >>> from sgdprob import analytic
    >>> float(analytic.langevin_stationary_cov(2.0, 3.0, eta=0.5, B=4)[0, 0])
    0.09375
    """
    lam, Q, q = _quadratic_model(H, Sigma1, eta, B)
    _quadratic.positive_definite(lam)
    return _from_basis(Q, q / (lam[:, None] + lam[None, :]))


def euler_maruyama_stationary_cov(H, Sigma1, *, eta, B, dt):
    """Stationary covariance of the Euler-Maruyama scheme at step dt.

    :func:`sgdprob.langevin` steps ``Phi <- (I - dt H) Phi + sqrt(dt)
    eps``, ``eps ~ N(0, eta Sigma1 / B)``, whose stationary covariance
    solves

        ``C = (I - dt H) C (I - dt H)^T + dt eta Sigma1 / B``.

    It tends to :func:`langevin_stationary_cov` as ``dt -> 0``, and at
    ``dt = eta`` it equals :func:`sgd_stationary_cov`.

    Parameters
    ----------
    H : array_like, shape (d, d)
        Hessian, symmetric positive definite.
    Sigma1 : array_like, shape (d, d)
        Covariance of one per-sample gradient, symmetric positive
        semi-definite.
    eta : float
        Learning rate, > 0.
    B : float
        Batch size, > 0.
    dt : float
        Time step, with ``0 < dt lam_max < 2``.

    Returns
    -------
    C : ndarray, shape (d, d)

    Raises
    ------
    ValueError
        If `H` is not positive definite, ``dt lam_max >= 2`` (the scheme
        diverges), or a matrix is not symmetric, finite or of matching
        shape, or `Sigma1` is not positive semi-definite.

    Notes
    -----
    ``C' = eta q / (B (lam_i + lam_j - dt lam_i lam_j))`` in the
    eigenbasis of `H`, with ``q = Q^T Sigma1 Q``.

    Examples
    --------
    >>> from sgdprob import analytic
    >>> c = analytic.euler_maruyama_stationary_cov(2.0, 3.0, eta=0.5, B=4,
    ...                                            dt=0.5)
    >>> float(c[0, 0])                       # the SGD value at dt = eta
    0.1875
    """
    lam, Q, q = _quadratic_model(H, Sigma1, eta, B)
    dt = _quadratic.positive(dt, "dt")
    return _discrete_stationary(lam, Q, q, dt, "dt",
                                "the Euler-Maruyama scheme")


def langevin_transient(H, Sigma1, *, eta, B, t, phi0=0.0):
    """Mean and covariance of the Langevin model at time t.

    Started from a fixed ``Phi(0) = phi0``, ``dPhi = -H Phi dt +
    (eta Sigma1 / B)^(1/2) dW`` is Gaussian at every time with

        ``mean(t) = exp(-H t) phi0``
        ``C(t) = int_0^t exp(-H s) (eta Sigma1 / B) exp(-H s) ds``.

    Parameters
    ----------
    H : array_like, shape (d, d)
        Hessian, symmetric (here it need not be positive definite).
    Sigma1 : array_like, shape (d, d)
        Covariance of one per-sample gradient, symmetric positive
        semi-definite.
    eta : float
        Learning rate, > 0.
    B : float
        Batch size, > 0.
    t : float or array_like
        Times, finite and >= 0.
    phi0 : float or array_like, optional
        Start, a scalar or a (d,) vector. Default 0.

    Returns
    -------
    Moments
        Named tuple ``(mean, cov)`` with shapes ``t.shape + (d,)`` and
        ``t.shape + (d, d)``.

    Raises
    ------
    ValueError
        If `t` is negative or not finite, `phi0` has the wrong shape, a
        matrix is not symmetric, finite or of matching shape, or
        `Sigma1` is not positive semi-definite.

    Notes
    -----
    In the eigenbasis of `H`, with ``q = Q^T Sigma1 Q``,

        ``C'(t) = (eta q / B) (1 - exp(-(lam_i + lam_j) t))
        / (lam_i + lam_j)``,

    computed with ``expm1``, and equal to ``(eta q / B) t`` where
    ``lam_i + lam_j = 0``. As ``t -> inf`` it tends to
    :func:`langevin_stationary_cov` when `H` is positive definite.

    Examples
    --------
    >>> from sgdprob import analytic
    >>> m = analytic.langevin_transient(1.0, 2.0, eta=0.5, B=1,
    ...                                 t=[0.0, 1e6], phi0=3.0)
    >>> m.mean[:, 0]
    array([3., 0.])
    >>> m.cov[:, 0, 0]                      # 0 at t = 0, then 0.5 * 2 / 2
    array([0. , 0.5])
    """
    lam, Q, q = _quadratic_model(H, Sigma1, eta, B)
    d = lam.shape[0]
    t = _quadratic.real_array(t, "t")
    if np.any(t < 0):
        raise ValueError("t must be >= 0")
    phi0 = _quadratic.real_array(phi0, "phi0")
    if phi0.ndim > 1 or (phi0.ndim == 1 and phi0.shape != (d,)):
        raise ValueError(
            f"phi0 must be a scalar or a ({d},) vector; got shape "
            f"{phi0.shape}")
    phi0 = np.broadcast_to(phi0, (d,))

    tt = t[..., None]
    mean = (np.exp(-lam * tt) * (Q.T @ phi0)) @ Q.T
    s = lam[:, None] + lam[None, :]
    st = s * tt[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.where(st == 0, tt[..., None], -np.expm1(-st) / s)
    Cp = q * growth
    cov = Q @ Cp @ Q.T
    return Moments(mean, (cov + np.swapaxes(cov, -1, -2)) / 2)


def least_squares_noise(X, y):
    """The quadratic model of SGD on least squares at its optimum.

    For the loss ``(1/2n) sum_r (x_r . Phi - y_r)^2`` this returns the
    optimum ``Phi*``, the Hessian ``H = X^T X / n`` and the covariance
    ``Sigma1`` (``ddof=0``, the rows being the whole population) of the
    per-sample gradients ``g_r = (x_r . Phi* - y_r) x_r``, computed with
    :mod:`sgdprob.linear`. Near ``Phi*``, SGD is SGD on the quadratic
    with these ``H`` and ``Sigma1``.

    Parameters
    ----------
    X : array_like, shape (n, p)
        Features, one row per example (append a column of ones for an
        intercept).
    y : array_like, shape (n,)
        Responses.

    Returns
    -------
    LeastSquaresNoise
        Named tuple ``(phi_star, H, Sigma1)``.

    Raises
    ------
    ValueError
        If `X` is not (n, p) with ``n, p >= 1``, `y` is not (n,), or an
        input is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob import analytic
    >>> X = np.array([[1.0], [2.0], [3.0]])
    >>> noise = analytic.least_squares_noise(X, [1.0, 2.0, 2.0])
    >>> noise.H
    array([[4.66666667]])
    """
    from . import linear

    X = _quadratic.real_array(X, "X")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"X must be (n, p) with n, p >= 1; got shape {X.shape}")
    n = X.shape[0]
    y = _quadratic.real_array(y, "y")
    if y.shape != (n,):
        raise ValueError(
            f"y must be ({n},), one response per row of X; got shape "
            f"{y.shape}")

    phi_star = np.linalg.lstsq(X, y, rcond=None)[0]
    H = linear.grad(X, X)                     # (1/n) sum_r x_r x_r^T
    residual = linear.forward(phi_star[None, :], X)[:, 0] - y
    G = linear.per_sample_grad(X, residual[:, None])[:, 0, :]
    dev = G - G.mean(axis=0)
    Sigma1 = dev.T @ dev / n
    return LeastSquaresNoise(phi_star, (H + H.T) / 2,
                             (Sigma1 + Sigma1.T) / 2)


def _full_rank(X, H):
    """(lam, Q) of H = X^T X / n; ValueError naming X if H is singular
    or numerically singular (the test of _quadratic.positive_definite)."""
    lam, Q = _quadratic.hessian(H)
    n, p = np.shape(X)
    if lam[0] <= p * np.finfo(float).eps * np.abs(lam).max():
        if n < p:
            why = (f"X has fewer rows than columns ({n} < {p}); use at "
                   f"least {p} rows whose columns are not collinear")
        else:
            why = ("the columns of X are collinear, or nearly so; drop "
                   "or combine the redundant columns")
        raise ValueError(
            f"X^T X / n is singular or numerically singular: {why}. Its "
            f"smallest eigenvalue, {lam[0]:.3g}, is zero up to rounding "
            f"(at most {p} eps times the largest, {lam[-1]:.3g}), so the "
            "loss is flat along a direction, the least-squares optimum "
            "is not unique, and SGD's covariance along that direction is "
            "not set by the data: there is no stationary covariance")
    return lam, Q


def mandt_stationary_cov(X, y, *, eta, B):
    """Langevin prediction of the stationary covariance of SGD on least
    squares.

    Mandt, Hoffman and Blei model SGD near the optimum by the Langevin
    equation with ``H = X^T X / n`` and ``Sigma1`` the covariance of the
    per-sample gradients at the optimum (:func:`least_squares_noise`);
    the prediction is its stationary covariance,

        ``H C + C H = eta Sigma1 / B``,

    the covariance of SGD's iterates about ``Phi*``.

    Parameters
    ----------
    X : array_like, shape (n, p)
        Features (append a column of ones for an intercept).
    y : array_like, shape (n,)
        Responses.
    eta : float
        Learning rate, > 0.
    B : float
        Batch size, > 0.

    Returns
    -------
    C : ndarray, shape (p, p)

    Raises
    ------
    ValueError
        If ``X^T X / n`` is singular or numerically singular (fewer
        rows than columns, or collinear columns), or the inputs are
        malformed (see :func:`least_squares_noise`).

    Notes
    -----
    S. Mandt, M. D. Hoffman and D. M. Blei, "Stochastic Gradient Descent
    as Approximate Bayesian Inference", JMLR 18(134), 2017. The model
    is exact as ``eta -> 0``; at finite ``eta`` the iterates of
    :func:`sgdprob.sgd_least_squares` differ by ``O(eta)`` relative (the
    discreteness of the steps, and a noise that grows away from the
    optimum). Without replacement multiply by ``(n - B) / (n - 1)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob import analytic
    >>> from sgdprob.datasets import load_diabetes
    >>> X, y, names = load_diabetes()
    >>> C = analytic.mandt_stationary_cov(X, y - y.mean(), eta=0.01, B=8)
    >>> C.shape
    (10, 10)
    """
    noise = least_squares_noise(X, y)
    _full_rank(X, noise.H)
    return langevin_stationary_cov(noise.H, noise.Sigma1, eta=eta, B=B)


def sgd_least_squares_stationary_cov(X, y, *, eta, B):
    """Exact stationary covariance of SGD on least squares.

    SGD on ``(1/2n) sum_r (x_r . Phi - y_r)^2`` with batches of B rows
    drawn with replacement (:func:`sgdprob.sgd_least_squares`) settles
    about the optimum ``Phi*`` with a covariance ``C`` that this
    function computes exactly. Unlike :func:`mandt_stationary_cov` it
    keeps the discreteness of the steps and the gradient noise that
    grows away from ``Phi*``.

    Parameters
    ----------
    X : array_like, shape (n, p)
        Features (append a column of ones for an intercept).
    y : array_like, shape (n,)
        Responses.
    eta : float
        Learning rate, > 0.
    B : float
        Batch size, > 0 (rows drawn with replacement).

    Returns
    -------
    C : ndarray, shape (p, p)

    Raises
    ------
    ValueError
        If ``X^T X / n`` is singular or numerically singular (fewer
        rows than columns, or collinear columns), the inputs are
        malformed (see :func:`least_squares_noise`), or SGD diverges at
        this `eta` and `B` (the covariance then grows without bound).

    Notes
    -----
    With ``e = Phi - Phi*``, one step is ``e <- (I - eta Hb) e - eta gb``,
    where ``Hb`` is the batch mean of ``x_r x_r^T`` and ``gb`` the batch
    mean of the per-sample gradients at ``Phi*`` (mean 0, covariance
    ``Sigma1 / B``). The new batch is independent of ``e``, and ``E e ->
    0``, so the stationary ``C`` solves

        ``H C + C H - eta ((1 - 1/B) H C H + K(C) / B) = eta Sigma1 / B``,
        ``K(C) = (1/n) sum_r x_r x_r^T C x_r x_r^T``,

    a linear equation in the ``p^2`` entries of ``C``. In the eigenbasis
    ``H = Q diag(lam) Q^T`` (rows ``z_r = Q^T x_r``) its matrix is
    ``diag(lam_i + lam_j) - eta ((1 - 1/B) diag(lam_i lam_j) + M / B)``
    with ``M[(i, j), (k, l)] = mean_r z_ri z_rj z_rk z_rl``: symmetric,
    so one symmetric eigendecomposition gives both the solution and the
    test of convergence (one step multiplies the second moment by
    ``I - eta`` times that matrix, whose eigenvalues must lie in
    ``(-1, 1)``). Dropping the ``eta`` terms on the left gives the
    Langevin prediction :func:`mandt_stationary_cov`. The cost is
    ``O(n p^4 + p^6)``: meant for p up to a few tens.

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob import analytic
    >>> from sgdprob.datasets import load_diabetes
    >>> X, y, names = load_diabetes()
    >>> X1 = np.column_stack([X[:, :4], np.ones(len(y))])
    >>> exact = analytic.sgd_least_squares_stationary_cov(X1, y, eta=0.01,
    ...                                                   B=1)
    >>> mandt = analytic.mandt_stationary_cov(X1, y, eta=0.01, B=1)
    >>> gap = np.linalg.norm(exact - mandt) / np.linalg.norm(exact)
    >>> bool(0 < gap < 0.05)
    True
    """
    noise = least_squares_noise(X, y)
    eta = _quadratic.positive(eta, "eta")
    B = _quadratic.positive(B, "B")
    lam, Q = _full_rank(X, noise.H)
    p = lam.shape[0]

    Z = _quadratic.real_array(X, "X") @ Q                # rows z_r
    pairs = (Z[:, :, None] * Z[:, None, :]).reshape(len(Z), p * p)
    M = pairs.T @ pairs / len(Z)                         # mean z_i z_j z_k z_l
    li, lj = lam[:, None], lam[None, :]
    L = -(eta / B) * M
    L[np.diag_indices(p * p)] += ((li + lj)
                                  - eta * (1 - 1 / B) * li * lj).ravel()
    L = (L + L.T) / 2
    w, V = np.linalg.eigh(L)
    if not (np.all(eta * w > 0) and np.all(eta * w < 2)):
        raise ValueError(
            f"SGD on this least-squares problem diverges at eta = {eta:g}, "
            f"B = {B:g}: one step multiplies the second moment by a factor "
            f"of modulus {np.max(np.abs(1 - eta * w)):.6g} >= 1, so it has "
            f"no stationary covariance")
    rhs = (eta / B) * _quadratic.in_basis(Q, noise.Sigma1).reshape(-1)
    Cp = (V @ ((V.T @ rhs) / w)).reshape(p, p)
    return _from_basis(Q, Cp)
