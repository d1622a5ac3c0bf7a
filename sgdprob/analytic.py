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
"""
import numpy as np

__all__ = ["leaky_sum_of_constant", "leaky_sum_limit", "ema_of_constant",
           "warmup_mean_of_constant", "leaky_sum_from_ema"]


def _finite_N(N):
    N = np.asarray(N, dtype=np.float64)
    bad = ~((N >= 1.0) & np.isfinite(N))
    if bad.any():
        raise ValueError(
            f"N must be finite and >= 1; got {N[bad].flat[0]!r}")
    return N


def _steps(t):
    t = np.asarray(t)
    if t.dtype.kind not in "iuf":
        raise TypeError(f"t must be real, not dtype {t.dtype}")
    t = t.astype(np.float64)
    if np.any(~(t >= 0)):
        raise ValueError("t must be >= 0")
    return t


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
    p, q = _decay(N, _steps(t))
    return N * np.asarray(c, float) * q + p * np.asarray(initial, float)


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
    return _finite_N(N) * np.asarray(c, float)


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
    p, q = _decay(N, _steps(t))
    return np.asarray(c, float) * q + p * np.asarray(initial, float)


def warmup_mean_of_constant(c, N, t):
    """Warm-up mean of a constant input: ``c`` at every ``t >= 1``.

    By induction: ``y_1 = x_1 = c``, and if ``y_{t-1} = c`` then
    ``y_t = (1 - 1/m) c + c / m = c`` for any ``m = min(t, N)``.

    Parameters
    ----------
    c : float or array_like
        The constant input.
    N : float or array_like
        Horizon, finite and ``>= 1`` (the answer does not depend on it).
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
    N = _finite_N(N)
    t = _steps(t)
    if np.any(t < 1):
        raise ValueError("t must be >= 1: y_0 is not defined by the rule")
    return np.broadcast_arrays(np.asarray(c, float), N, t)[0].copy()


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
    return _finite_N(N) * np.asarray(mu, float)
