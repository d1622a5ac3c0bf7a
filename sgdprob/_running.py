"""Running averages of a series: argument checks around the C gufuncs."""
import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from . import _gufuncs
from ._checks import (broadcast_shape, out_operand, real_array,
                      result_dtype, whole_numbers)

__all__ = ["leaky_sum", "ema", "warmup_mean"]

_DTYPE_RULE = """\
    Data types: float32 data gives float32 output and float64 data gives
    float64 output; the running state is float64 in both. Other real input
    is cast by NumPy's safe-casting rule to the first of the float32 and
    float64 loops that accepts it: bool, int8, uint8, int16, uint16 and
    float16 go to float32, wider integers to float64 (int64 beyond 2**53
    rounds). Complex, object, string, float128 and masked-array input
    raise TypeError.

    The decay ``1 - 1/N`` is a float64, so the horizon the kernel runs
    with equals ``N`` to a relative accuracy of about ``N * 1.1e-16``:
    close to exact up to ``N = 1e10``, up to 1e-3 off at ``N = 1e13``.
    (The closed forms in :mod:`sgdprob.analytic` use the exact ``N``.)"""

_ROUNDING_RULE = """\
    Long series are advanced several steps per multiply-add: the state
    carried from one block of steps to the next is multiplied by a power
    of the decay that is itself rounded, and series along the
    faster-varying axis of memory are advanced side by side. These
    roundings compound from step to step like a tiny change of the
    horizon, so the output ``y_t`` can differ from a plain loop over the
    same float64 recurrence by up to ``40 * 2**-53 * A_t`` (and between
    memory layouts of the same data by twice that), where ``A_t`` runs
    the recurrence on absolute values with the previous output added in:
    ``A_0 = 0``, ``A_t = a_t (A_{t-1} + |y_{t-1}|) + |b_t x_t|``, with
    ``a_t`` and ``b_t`` the weights of ``y_{t-1}`` and ``x_t`` in the
    update above. ``A_t`` is at most about ``min(t, N)`` times the
    recent ``|y|``, so for an output of steady size the relative
    difference is up to about ``4.4e-15 * min(t, N)``. For example,
    ``leaky_sum`` of 10**5 ones at ``N = 1e6`` is 3.5e-13 (relative)
    from the plain loop, which is within 2.3e-16 of the exact value of
    the float64 recurrence; the bound is 2.2e-10 there. This is of the
    order of the horizon error above: against the recurrence with the
    exact ``N``, the kernel and the plain loop are equally accurate
    (1.8e-12 and 1.4e-12 in that example)."""


def _check_N(N):
    if type(N) is float or type(N) is int and N < 2 ** 63:   # made cheap
        if not N >= 1.0:
            raise ValueError(f"N must be >= 1 (N = inf is allowed); got {N!r}")
        return np.asarray(float(N))
    N = real_array(N, "N").astype(np.float64, copy=False)
    bad = ~(N >= 1.0)
    if bad.any():
        raise ValueError(
            f"N must be >= 1 (N = inf is allowed); got {N[bad].flat[0]!r}")
    return N


def _check_initial(initial):
    if type(initial) is float or type(initial) is int and abs(initial) < 2 ** 63:
        return np.asarray(float(initial))
    return real_array(initial, "initial").astype(np.float64, copy=False)


def _run(gufunc, x, params, axis, out):
    """Call gufunc on x along axis with params (already checked)."""
    x = real_array(x, "x", data=True)
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension (the series)")
    axis = normalize_axis_index(axis, x.ndim)
    x_loop = x.shape[:axis] + x.shape[axis + 1:]
    names = ", ".join(f"{n} {p.shape}" for n, p in
                      zip(("N", "initial", "start"), params))
    loop = broadcast_shape(
        (x_loop,) + tuple(p.shape for p in params),
        f"{names} and the shape of x without axis {axis}, {x_loop},")
    out_axis = axis - x.ndim
    if out is None:
        dtype = result_dtype(x)
        if loop == x_loop:
            out = np.empty_like(x, dtype=dtype)
        else:
            shape = list(loop)
            shape.insert(len(loop) + 1 + out_axis, x.shape[axis])
            out = np.empty(shape, dtype=dtype)
    else:
        out = out_operand(out, 1)
    axes = [(axis,)] + [()] * len(params) + [(out_axis,)]
    return gufunc(x, *params, axes=axes, out=out)


def leaky_sum(x, N, *, axis=-1, initial=0.0, out=None):
    """Leaky running sum of a series.

    ``y_0 = initial``, ``y_t = (1 - 1/N) y_{t-1} + x_t`` for
    ``t = 1 .. n``.

    For a constant input ``x_t = c`` it tends to ``N c``: a fixed point
    ``y`` satisfies ``y = (1 - 1/N) y + c``. It is ``N`` times the
    exponential moving average of :func:`ema` started from
    ``initial / N``.

    Parameters
    ----------
    x : array_like
        The series, along `axis`; the other axes are independent series.
    N : float or array_like
        Horizon, ``N >= 1``; ``N = inf`` gives the cumulative sum. An
        array broadcasts against the shape of `x` without `axis`, so one
        call runs a sweep of horizons.
    axis : int, optional
        The time axis of `x`. Default -1.
    initial : float or array_like, optional
        ``y_0``, the state before the first step; broadcasts like `N`.
        To continue a stream, pass the last output of the previous chunk.
    out : ndarray, optional
        Where to write the result; its shape is that of the result.

    Returns
    -------
    y : ndarray
        ``y_1 .. y_n`` along `axis`, with the memory layout of `x`.

    Raises
    ------
    ValueError
        If `N` is below 1 or NaN, or the shapes do not broadcast.
    TypeError
        If `x`, `N` or `initial` is not real.

    Notes
    -----
{dtypes}

{rounding}

    NaN in `x` propagates to every later output.

    Examples
    --------
    >>> import numpy as np
    >>> import sgdprob
    >>> sgdprob.leaky_sum(np.ones(4), 2.0)
    array([1.   , 1.5  , 1.75 , 1.875])
    >>> float(sgdprob.leaky_sum(np.ones(200), 2.0)[-1])   # N c
    2.0
    """
    N = _check_N(N)
    initial = _check_initial(initial)
    return _run(_gufuncs.leaky_sum, x, (N, initial), axis, out)


def ema(x, N, *, axis=-1, initial=0.0, out=None):
    """Exponential moving average of a series.

    ``mu_0 = initial``, ``mu_t = (1 - 1/N) mu_{t-1} + x_t / N`` for
    ``t = 1 .. n``.

    The weights ``(1/N) (1 - 1/N)^k`` of the inputs sum to
    ``1 - (1 - 1/N)^t``, so started from 0 the average is biased towards
    0 for the first few times ``N`` steps; :func:`warmup_mean` removes
    that bias.

    Parameters
    ----------
    x : array_like
        The series, along `axis`; the other axes are independent series.
    N : float or array_like
        Horizon, ``N >= 1``, broadcasting against the shape of `x`
        without `axis`. With ``N = inf`` the average stays at `initial`.
    axis : int, optional
        The time axis of `x`. Default -1.
    initial : float or array_like, optional
        ``mu_0``; to continue a stream, the last output of the previous
        chunk.
    out : ndarray, optional
        Where to write the result.

    Returns
    -------
    mu : ndarray
        ``mu_1 .. mu_n`` along `axis`, with the memory layout of `x`.

    Raises
    ------
    ValueError
        If `N` is below 1 or NaN, or the shapes do not broadcast.
    TypeError
        If `x`, `N` or `initial` is not real.

    Notes
    -----
{dtypes}

{rounding}

    Examples
    --------
    >>> import numpy as np
    >>> import sgdprob
    >>> sgdprob.ema(np.ones(4), 2.0)
    array([0.5   , 0.75  , 0.875 , 0.9375])
    >>> N = np.array([1.0, 4.0])     # one output row per horizon
    >>> sgdprob.ema(np.ones(3), N)
    array([[1.      , 1.      , 1.      ],
           [0.25    , 0.4375  , 0.578125]])
    """
    N = _check_N(N)
    initial = _check_initial(initial)
    return _run(_gufuncs.ema, x, (N, initial), axis, out)


def warmup_mean(x, N, *, axis=-1, initial=0.0, start=0, out=None):
    """Running mean that warms up: the plain mean first, then an EMA.

    ``y_t = (1 - 1/m) y_{t-1} + x_t / m`` with ``m = min(t, N)``, for
    ``t = start + 1 .. start + n`` and ``y_start = initial``.

    While ``t <= N`` this is the mean of all inputs so far, so a constant
    input ``c`` gives ``y_t = c`` from the first step on (no start-up
    bias); after that it is :func:`ema` with horizon ``N``.

    Parameters
    ----------
    x : array_like
        The series, along `axis`.
    N : float or array_like
        Horizon, ``N >= 1``; ``N = inf`` gives the cumulative mean.
        Broadcasts against the shape of `x` without `axis`.
    axis : int, optional
        The time axis of `x`. Default -1.
    initial : float or array_like, optional
        ``y_start``; ignored when ``start = 0``, since ``y_1 = x_1``.
    start : int or array_like, optional
        Steps already taken before `x`; to continue a stream, the number
        of inputs seen so far, with `initial` the last output.
    out : ndarray, optional
        Where to write the result.

    Returns
    -------
    y : ndarray
        ``y_{start+1} .. y_{start+n}`` along `axis`.

    Raises
    ------
    ValueError
        If `N` is below 1 or NaN, `start` is negative or not a whole
        number, or the shapes do not broadcast.
    TypeError
        If an argument is not real.

    Notes
    -----
{dtypes}

{rounding}

    Examples
    --------
    >>> import numpy as np
    >>> import sgdprob
    >>> sgdprob.warmup_mean(np.array([1.0, 2.0, 3.0, 4.0]), np.inf)
    array([1. , 1.5, 2. , 2.5])
    >>> sgdprob.warmup_mean(np.full(4, 7.0), 2.0)
    array([7., 7., 7., 7.])
    """
    N = _check_N(N)
    initial = _check_initial(initial)
    start = whole_numbers(start, "start", low=0)
    return _run(_gufuncs.warmup_mean, x, (N, initial, start), axis, out)


for _f in (leaky_sum, ema, warmup_mean):
    _f.__doc__ = (_f.__doc__.replace("{dtypes}", _DTYPE_RULE)
                  .replace("{rounding}", _ROUNDING_RULE))
del _f
