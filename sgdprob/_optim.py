"""One step of RMSProp and Adam: argument checks around the C ufuncs."""
import numpy as np

from . import _gufuncs
from ._checks import (broadcast_shape, out_operand, real_array,
                      result_dtype, whole_numbers)

__all__ = ["rmsprop_step", "adam_step"]

_G2_RULE = """\
    `g2` is the batch mean of the squared per-sample gradients,
    ``W.grad2`` of :func:`sgdprob.linear.grad2`, not the square of the
    batch-mean gradient `g`. The difference is the batch size: if one
    sample's gradient has mean ``G`` and variance ``sigma^2``, then
    ``E[g^2] = G^2 + sigma^2 / B`` falls as the batch grows, and with it
    the denominator of the step, whereas ``E[g2] = G^2 + sigma^2`` does
    not depend on ``B``. With `g2` the step size means the same thing at
    every batch size."""

_DTYPE_RULE = """\
    The arrays broadcast together. float32 data give float32 results
    and anything wider float64; the arithmetic is in float64 and each
    result is rounded once. Each element is computed from its inputs
    before it is stored, so ``out`` may name the state arrays to update
    them in place."""


def _data(value, name):
    return real_array(value, name, data=True)


def _param(value, name, *, low=None, finite=True):
    arr = real_array(value, name).astype(np.float64, copy=False)
    bad = np.isnan(arr) | (~np.isfinite(arr) if finite else False)
    if low is not None:
        bad |= ~(arr >= low)
    if bad.any():
        rule = "finite" if finite else "a number"
        if low is not None:
            rule += f" and >= {low:g}"
        raise ValueError(f"{name} must be {rule}; got {arr[bad].flat[0]!r}")
    return arr


def _shapes(named):
    shapes = ", ".join(f"{n} {a.shape}" for n, a in named.items())
    broadcast_shape([a.shape for a in named.values()],
                    f"the shapes {shapes}")


_F8 = np.dtype(np.float64)
_I8 = np.dtype(np.int64)


def rmsprop_step(phi, s, g, g2, *, eta, N, eps=1e-8, out=None):
    """One step of RMSProp with the second moment of per-sample gradients.

    ``s' = (1 - 1/N) s + g2 / N`` and
    ``phi' = phi - eta g / (sqrt(s') + eps)``.

    Parameters
    ----------
    phi : array_like
        Parameters before the step.
    s : array_like
        Running mean of `g2` before the step (zeros at the start).
    g : array_like
        Gradient averaged over the batch, ``W.grad``.
    g2 : array_like
        Batch mean of the squared per-sample gradients, ``W.grad2``.
    eta : float or array_like
        Learning rate, finite.
    N : float or array_like
        Horizon of the running mean, ``N >= 1``; ``N = inf`` freezes `s`.
    eps : float or array_like, optional
        Added to ``sqrt(s')``, finite and ``>= 0``. Default 1e-8.
    out : tuple of two ndarrays, optional
        Where to write ``phi'`` and ``s'``; ``out=(phi, s)`` updates in
        place. The two must not share memory with each other.

    Returns
    -------
    phi, s : ndarray
        Parameters and running mean after the step.

    Raises
    ------
    ValueError
        If `N` is below 1 or NaN, `eps` negative, `eta` or `eps` not
        finite, the shapes do not broadcast, or `out` is not a pair of
        arrays in separate memory.
    TypeError
        If an argument is not real.

    Notes
    -----
{g2}

{dtypes}

    Examples
    --------
    >>> import numpy as np
    >>> import sgdprob
    >>> phi, s = np.array([1.0]), np.array([2.0])
    >>> sgdprob.rmsprop_step(phi, s, g=np.array([1.0]),
    ...                      g2=np.array([6.0]), eta=0.1, N=2.0)
    (array([0.95]), array([4.]))
    """
    arrays = {"phi": _data(phi, "phi"), "s": _data(s, "s"),
              "g": _data(g, "g"), "g2": _data(g2, "g2"),
              "eta": _param(eta, "eta"),
              "N": _param(N, "N", low=1.0, finite=False),
              "eps": _param(eps, "eps", low=0.0)}
    _shapes(arrays)
    c = result_dtype(*list(arrays.values())[:4])
    return _gufuncs.rmsprop_step(*arrays.values(), out=out_operand(out, 2),
                                 signature=(c,) * 4 + (_F8,) * 3 + (c,) * 2)


def adam_step(phi, m, s, g, g2, t, *, eta, N_g, N_s, eps=1e-8, out=None):
    """One step of Adam with warmed-up running means.

    With ``t = 1, 2, ...`` the step number, ``a = min(t, N_g)`` and
    ``c = min(t, N_s)``:

    ``m' = (1 - 1/a) m + g / a``, ``s' = (1 - 1/c) s + g2 / c`` and
    ``phi' = phi - eta m' / (sqrt(s') + eps)``.

    Parameters
    ----------
    phi : array_like
        Parameters before the step.
    m : array_like
        Running mean of `g` before the step (ignored at ``t = 1``).
    s : array_like
        Running mean of `g2` before the step (ignored at ``t = 1``).
    g : array_like
        Gradient averaged over the batch, ``W.grad``.
    g2 : array_like
        Batch mean of the squared per-sample gradients, ``W.grad2``.
    t : int or array_like
        Number of this step, counted from 1.
    eta : float or array_like
        Learning rate, finite.
    N_g, N_s : float or array_like
        Horizons of the running means of `g` and `g2`, ``>= 1``; ``inf``
        gives the plain mean of all steps.
    eps : float or array_like, optional
        Added to ``sqrt(s')``, finite and ``>= 0``. Default 1e-8.
    out : tuple of three ndarrays, optional
        Where to write ``phi'``, ``m'`` and ``s'``; ``out=(phi, m, s)``
        updates in place. No two of them may share memory.

    Returns
    -------
    phi, m, s : ndarray
        Parameters and running means after the step.

    Raises
    ------
    ValueError
        If `t` is below 1 or not whole, a horizon is below 1 or NaN,
        `eps` is negative, `eta` or `eps` is not finite, the shapes do
        not broadcast, or `out` is not a triple of arrays in separate
        memory.
    TypeError
        If an argument is not real.

    Notes
    -----
    The running means are those of :func:`sgdprob.warmup_mean`: until
    ``t`` reaches the horizon they are the plain means of the steps so
    far, so they carry no bias towards the zero start and need none of
    the usual ``1 / (1 - beta^t)`` corrections. Horizons ``N`` stand for
    ``beta = 1 - 1/N`` (Adam's defaults 0.9 and 0.999 are ``N_g = 10``
    and ``N_s = 1000``).

{g2}

{dtypes}

    Examples
    --------
    >>> import numpy as np
    >>> import sgdprob
    >>> phi, m, s = np.ones(2), np.zeros(2), np.zeros(2)
    >>> g, g2 = np.array([0.5, -0.5]), np.array([1.0, 1.0])
    >>> for t in (1, 2):
    ...     _ = sgdprob.adam_step(phi, m, s, g, g2, t, eta=0.1, N_g=10,
    ...                           N_s=1000, out=(phi, m, s))
    >>> phi
    array([0.9, 1.1])
    """
    arrays = {"phi": _data(phi, "phi"), "m": _data(m, "m"),
              "s": _data(s, "s"), "g": _data(g, "g"), "g2": _data(g2, "g2"),
              "t": whole_numbers(t, "t", low=1), "eta": _param(eta, "eta"),
              "N_g": _param(N_g, "N_g", low=1.0, finite=False),
              "N_s": _param(N_s, "N_s", low=1.0, finite=False),
              "eps": _param(eps, "eps", low=0.0)}
    _shapes(arrays)
    c = result_dtype(*list(arrays.values())[:5])
    return _gufuncs.adam_step(
        *arrays.values(), out=out_operand(out, 3),
        signature=(c,) * 5 + (_I8,) + (_F8,) * 4 + (c,) * 3)


for _f in (rmsprop_step, adam_step):
    _f.__doc__ = (_f.__doc__.replace("{g2}", _G2_RULE)
                  .replace("{dtypes}", _DTYPE_RULE))
del _f
