"""A linear layer, its gradients and the moments of its per-sample gradients.

The layer maps a batch of ``B`` inputs ``x[b, i]`` to outputs

    y[b, j] = sum_i W[j, i] x[b, i],        b < B, j < J, i < I.

A bias is a column of ones appended to ``x``; the last column of ``W`` is
then the bias::

    x1 = np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1)

``ygrad[b, j]`` is the derivative of sample ``b``'s own loss with respect
to ``y[b, j]``. The gradient of sample ``b`` alone with respect to
``W[j, i]`` is ``W.grad[b, j, i] = ygrad[b, j] x[b, i]``, and

- :func:`grad`      ``W.grad[j, i]  = (1/B) sum_b W.grad[b, j, i]``
- :func:`grad2`     ``W.grad2[j, i] = (1/B) sum_b W.grad[b, j, i]^2``
- :func:`moments`   both in one pass over the data
- :func:`variance`  the variance over ``b`` of ``W.grad[b, j, i]``
- :func:`noise_scale`  the gradient noise scale ``tr(Sigma) / |G|^2``
- :func:`per_sample_grad`  ``W.grad[b, j, i]`` itself
- :func:`forward`, :func:`input_grad`  ``y`` and ``x.grad``

``W.grad2`` cannot be computed from ``W.grad``: the square of a mean is
not the mean of the squares, and their difference is the variance of the
per-sample gradients. It is what RMSProp and Adam average as their second
moment, which is why their behaviour changes with the batch size.

Every function is a NumPy generalized ufunc written in C: any strides,
float32 or float64, and leading dimensions broadcast as in ``np.matmul``.
The contractions go to the BLAS GEMM that SciPy ships.
"""
import collections
import operator

import numpy as np

from . import _gufuncs
from ._checks import (broadcast_shape, out_operand, real_array,
                      result_dtype)

__all__ = ["forward", "input_grad", "grad", "per_sample_grad", "grad2",
           "moments", "variance", "noise_scale", "NoiseScale"]

# The BLAS that SciPy ships takes 32-bit int dimensions.
_BLAS_MAX = 2 ** 31 - 1

_YGRAD_RULE = """\
    ``ygrad[b, j]`` is the derivative of sample ``b``'s own loss with
    respect to ``y[b, j]``, not divided by ``B``, and ``B`` is always
    read from the shape of the arrays. Autograd on a loss averaged over
    the batch, ``(1/B) sum_b loss_b`` (PyTorch's default
    ``reduction="mean"``), returns ``ygrad / B``: multiply it by ``B``
    first. A loss summed over the batch gives ``ygrad`` as it is.
    Mixing the two up scales the result by ``B`` or ``B**2``, the
    commonest bug in per-sample gradient code."""

_DTYPE_RULE = """\
    float32 data are computed in float32 (the BLAS sgemm) and float64
    data in float64; other real types are cast as NumPy's ufunc rules
    cast them (bool and integers up to 16 bits to float32, wider ones to
    float64). Leading dimensions broadcast against each other as in
    ``np.matmul``. A bias is a column of ones appended to `x`."""

NoiseScale = collections.namedtuple(
    "NoiseScale", ["B_simple", "trace_sigma", "grad_norm_sq"])
NoiseScale.__doc__ = """\
The simple gradient noise scale and the two estimates it is made of.

B_simple : float or ndarray
    ``trace_sigma / grad_norm_sq``.
trace_sigma : float or ndarray
    Unbiased estimate of ``tr(Sigma)``, the summed variance of one
    sample's gradient.
grad_norm_sq : float or ndarray
    Unbiased estimate of ``|G|^2``, the squared norm of the true
    gradient; it can come out negative when the noise dominates.
"""


def _matrix(value, name, axes):
    """value as a real array with at least the two core axes `axes`."""
    arr = real_array(value, name, data=True)
    if arr.ndim < 2:
        raise ValueError(
            f"{name} must have at least two dimensions, {axes}; "
            f"got shape {arr.shape}")
    return arr


def _leading(a, a_name, b, b_name):
    broadcast_shape([a.shape[:-2], b.shape[:-2]],
                    f"the leading dimensions of {a_name} {a.shape[:-2]} "
                    f"and {b_name} {b.shape[:-2]}")


def _blas_size(n, what):
    if n > _BLAS_MAX:
        raise ValueError(
            f"{what} = {n} is beyond the BLAS, which takes sizes up to "
            f"2**31 - 1")


def _batch(x, ygrad, need, why):
    """Check x (..., B, I) against ygrad (..., B, J); return them and B."""
    x = _matrix(x, "x", "(b, i)")
    ygrad = _matrix(ygrad, "ygrad", "(b, j)")
    B = x.shape[-2]
    if ygrad.shape[-2] != B:
        raise ValueError(
            f"x has B = {B} rows (samples) but ygrad has "
            f"{ygrad.shape[-2]}; both are indexed [b, ...]")
    _leading(x, "x", ygrad, "ygrad")
    if B < need:
        raise ValueError(f"{why} needs B >= {need} samples; got B = {B}")
    return x, ygrad, B


def _call(gufunc, inputs, out, count, dtype):
    """``gufunc(*inputs, out=out, dtype=dtype)`` with `out` as the gufunc
    wants it. An output may share memory with an input: NumPy copies
    such an input first, and the loops copy one that is the very same
    array as the output."""
    return gufunc(*inputs, out=out_operand(out, count), dtype=dtype)


def forward(W, x, *, out=None):
    """Outputs of a linear layer for a batch of inputs.

    ``y[b, j] = sum_i W[j, i] x[b, i]``.

    Parameters
    ----------
    W : array_like, shape (..., J, I)
        Weights.
    x : array_like, shape (..., B, I)
        Inputs, one row per sample.
    out : ndarray, shape (..., B, J), optional
        Where to write the result.

    Returns
    -------
    y : ndarray, shape (..., B, J)

    Raises
    ------
    ValueError
        If `W` and `x` differ in ``I``, have fewer than two dimensions, or
        their leading dimensions do not broadcast.
    TypeError
        If `W` or `x` is not real.

    Notes
    -----
{dtypes}

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob import linear
    >>> W = np.array([[1.0, 2.0], [0.0, -1.0]])        # J = 2, I = 2
    >>> linear.forward(W, np.array([[1.0, 1.0], [2.0, 0.0]]))
    array([[ 3., -1.],
           [ 2.,  0.]])
    """
    W = _matrix(W, "W", "(j, i)")
    x = _matrix(x, "x", "(b, i)")
    if W.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"W has I = {W.shape[-1]} columns but x has {x.shape[-1]}; "
            f"y[b, j] sums W[j, i] x[b, i] over i")
    _leading(W, "W", x, "x")
    _blas_size(W.shape[-1], "I")
    _blas_size(W.shape[-2], "J")
    return _call(_gufuncs.linear_forward, (W, x), out, 1,
                 result_dtype(W, x))


def input_grad(W, ygrad, *, out=None):
    """Gradient of the loss with respect to the inputs of a linear layer.

    ``x.grad[b, i] = sum_j W[j, i] ygrad[b, j]``: what back-propagation
    hands to the layer below.

    Parameters
    ----------
    W : array_like, shape (..., J, I)
        Weights.
    ygrad : array_like, shape (..., B, J)
        Derivatives of the loss with respect to the outputs.
    out : ndarray, shape (..., B, I), optional
        Where to write the result.

    Returns
    -------
    xgrad : ndarray, shape (..., B, I)

    Raises
    ------
    ValueError
        If `W` and `ygrad` differ in ``J``, have fewer than two
        dimensions, or their leading dimensions do not broadcast.
    TypeError
        If `W` or `ygrad` is not real.

    Notes
    -----
    ``x.grad[b]`` depends on ``ygrad[b]`` alone, so it carries whatever
    scaling `ygrad` has.

{dtypes}

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob import linear
    >>> W = np.array([[1.0, 2.0], [0.0, -1.0]])
    >>> linear.input_grad(W, np.array([[1.0, 1.0]]))
    array([[1., 1.]])
    """
    W = _matrix(W, "W", "(j, i)")
    ygrad = _matrix(ygrad, "ygrad", "(b, j)")
    if W.shape[-2] != ygrad.shape[-1]:
        raise ValueError(
            f"W has J = {W.shape[-2]} rows but ygrad has "
            f"{ygrad.shape[-1]} columns; x.grad[b, i] sums "
            f"W[j, i] ygrad[b, j] over j")
    _leading(W, "W", ygrad, "ygrad")
    _blas_size(W.shape[-1], "I")
    _blas_size(W.shape[-2], "J")
    return _call(_gufuncs.linear_input_grad, (W, ygrad), out, 1,
                 result_dtype(W, ygrad))


def grad(x, ygrad, *, out=None):
    """Gradient of a linear layer's weights, averaged over the batch.

    ``W.grad[j, i] = (1/B) sum_b ygrad[b, j] x[b, i]``

    Parameters
    ----------
    x : array_like, shape (..., B, I)
        Inputs of the layer, one row per sample.
    ygrad : array_like, shape (..., B, J)
        Per-sample derivatives of the loss with respect to the outputs
        (see Notes).
    out : ndarray, shape (..., J, I), optional
        Where to write the result.

    Returns
    -------
    W_grad : ndarray, shape (..., J, I)

    Raises
    ------
    ValueError
        If ``B = 0`` (an average needs a sample), `x` and `ygrad` differ
        in ``B``, have fewer than two dimensions, or their leading
        dimensions do not broadcast.
    TypeError
        If `x` or `ygrad` is not real.

    Notes
    -----
{ygrad}

{dtypes}

    One GEMM, ``W.grad^T = (1/B) x^T ygrad``.

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob import linear
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])      # B = 2, I = 2
    >>> ygrad = np.array([[1.0], [-1.0]])           # J = 1
    >>> linear.grad(x, ygrad)
    array([[-1., -1.]])
    """
    x, ygrad, _ = _batch(x, ygrad, 1, "grad averages over the batch and")
    _blas_size(x.shape[-1], "I")
    _blas_size(ygrad.shape[-1], "J")
    return _call(_gufuncs.linear_grad, (x, ygrad), out, 1,
                 result_dtype(x, ygrad))


def per_sample_grad(x, ygrad, *, out=None):
    """Gradient of a linear layer's weights for each sample alone.

    ``W.grad[b, j, i] = ygrad[b, j] x[b, i]``

    Parameters
    ----------
    x : array_like, shape (..., B, I)
        Inputs of the layer.
    ygrad : array_like, shape (..., B, J)
        Per-sample derivatives of the loss with respect to the outputs.
    out : ndarray, shape (..., B, J, I), optional
        Where to write the result.

    Returns
    -------
    W_grad_b : ndarray, shape (..., B, J, I)
        ``B`` times the memory of the weights: :func:`grad2`,
        :func:`moments` and :func:`variance` give its moments without it.

    Raises
    ------
    ValueError
        If `x` and `ygrad` differ in ``B``, have fewer than two
        dimensions, or their leading dimensions do not broadcast.
    TypeError
        If `x` or `ygrad` is not real.

    Notes
    -----
{ygrad}

{dtypes}

    Each element is one product, rounded once. ``B = 0`` gives an empty
    result.

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob import linear
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> ygrad = np.array([[1.0], [-1.0]])
    >>> linear.per_sample_grad(x, ygrad)
    array([[[ 1.,  2.]],
    <BLANKLINE>
           [[-3., -4.]]])
    """
    x, ygrad, _ = _batch(x, ygrad, 0, "")
    return _call(_gufuncs.linear_per_sample_grad, (x, ygrad), out, 1,
                 result_dtype(x, ygrad))


def grad2(x, ygrad, *, out=None):
    """Batch mean of the squared per-sample gradients of the weights.

    ``W.grad2[j, i] = (1/B) sum_b W.grad[b, j, i]^2
    = (1/B) sum_b ygrad[b, j]^2 x[b, i]^2``

    Parameters
    ----------
    x : array_like, shape (..., B, I)
        Inputs of the layer.
    ygrad : array_like, shape (..., B, J)
        Per-sample derivatives of the loss with respect to the outputs.
    out : ndarray, shape (..., J, I), optional
        Where to write the result.

    Returns
    -------
    W_grad2 : ndarray, shape (..., J, I)

    Raises
    ------
    ValueError
        If ``B = 0``, `x` and `ygrad` differ in ``B``, have fewer than
        two dimensions, or their leading dimensions do not broadcast.
    TypeError
        If `x` or `ygrad` is not real.

    Notes
    -----
{ygrad}

{dtypes}

    Since ``W.grad[b, j, i]^2 = ygrad[b, j]^2 x[b, i]^2``, ``W.grad2`` is
    the GEMM of the squared data. The batch is taken in blocks of at
    most 256 rows whose squares go to a scratch buffer of at most 3 MiB
    (one row of `x` and `ygrad` if that is larger), so the memory used
    is the output plus that buffer, never the ``B x J x I`` per-sample
    array (an `out` whose strides the BLAS cannot write, such as a
    reversed view, adds one output-sized buffer).

    ``W.grad2`` cannot be obtained from ``W.grad``; for ``B = 1`` the
    two agree as ``W.grad2 = W.grad**2``.

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob import linear
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> ygrad = np.array([[1.0], [-1.0]])
    >>> linear.grad2(x, ygrad)
    array([[ 5., 10.]])
    """
    x, ygrad, _ = _batch(x, ygrad, 1, "grad2 averages over the batch and")
    _blas_size(x.shape[-1], "I")
    _blas_size(ygrad.shape[-1], "J")
    return _call(_gufuncs.linear_grad2, (x, ygrad), out, 1,
                 result_dtype(x, ygrad))


def moments(x, ygrad, *, out=None):
    """W.grad and W.grad2 of a linear layer in one pass over the data.

    ``W.grad[j, i] = (1/B) sum_b ygrad[b, j] x[b, i]`` and
    ``W.grad2[j, i] = (1/B) sum_b ygrad[b, j]^2 x[b, i]^2``.

    Parameters
    ----------
    x : array_like, shape (..., B, I)
        Inputs of the layer.
    ygrad : array_like, shape (..., B, J)
        Per-sample derivatives of the loss with respect to the outputs.
    out : tuple of two ndarrays, shape (..., J, I), optional
        Where to write ``W.grad`` and ``W.grad2``, two arrays that do not
        share memory with each other (either may share memory with `x`
        or `ygrad`).

    Returns
    -------
    W_grad, W_grad2 : ndarray, shape (..., J, I)
        The same values as :func:`grad` and :func:`grad2`.

    Raises
    ------
    ValueError
        If ``B = 0``, `x` and `ygrad` differ in ``B``, have fewer than
        two dimensions, their leading dimensions do not broadcast, or
        the two arrays of `out` share memory.
    TypeError
        If `x` or `ygrad` is not real.

    Notes
    -----
{ygrad}

{dtypes}

    Each block of rows is read once for both GEMMs. The population
    variance of the per-sample gradients is ``W.grad2 - W.grad**2``
    mathematically, but that difference cancels catastrophically when
    the spread is small beside the mean; use :func:`variance` for it.

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob import linear
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> ygrad = np.array([[1.0], [-1.0]])
    >>> g, g2 = linear.moments(x, ygrad)
    >>> g, g2
    (array([[-1., -1.]]), array([[ 5., 10.]]))
    """
    x, ygrad, _ = _batch(x, ygrad, 1, "moments averages over the batch and")
    _blas_size(x.shape[-1], "I")
    _blas_size(ygrad.shape[-1], "J")
    return _call(_gufuncs.linear_moments, (x, ygrad), out, 2,
                 result_dtype(x, ygrad))


def _check_ddof(ddof):
    if isinstance(ddof, (bool, np.bool_)) or np.ndim(ddof) != 0:
        raise TypeError(f"ddof must be a real number, not {ddof!r}")
    try:
        ddof = operator.index(ddof)
    except TypeError:
        if np.asarray(ddof).dtype.kind != "f":
            raise TypeError(
                f"ddof must be a real number, not {ddof!r}") from None
    ddof = float(ddof)
    if not ddof >= 0.0:
        raise ValueError(f"ddof must be >= 0; got {ddof!r}")
    return ddof


def variance(x, ygrad, ddof=0, *, out=None):
    """Variance over the batch of the per-sample gradients of the weights.

    ``var[j, i] = sum_b (W.grad[b, j, i] - W.grad[j, i])^2 / (B - ddof)``
    with ``W.grad[b, j, i] = ygrad[b, j] x[b, i]`` and ``W.grad[j, i]``
    their mean.

    Parameters
    ----------
    x : array_like, shape (..., B, I)
        Inputs of the layer.
    ygrad : array_like, shape (..., B, J)
        Per-sample derivatives of the loss with respect to the outputs.
    ddof : int or float, optional
        Delta degrees of freedom: 0 (default) for the population
        variance, 1 for the unbiased estimate of the variance of one
        sample's gradient.
    out : ndarray, shape (..., J, I), optional
        Where to write the result.

    Returns
    -------
    var : ndarray, shape (..., J, I)
        Never negative.

    Raises
    ------
    ValueError
        If ``B <= ddof`` (``B = 0``, or ``B = 1`` with ``ddof = 1``: an
        unbiased estimate needs two samples), `ddof` is negative or NaN,
        `x` and `ygrad` differ in ``B``, have fewer than two dimensions,
        or their leading dimensions do not broadcast.
    TypeError
        If `x`, `ygrad` or `ddof` is not real.

    Notes
    -----
{ygrad}

{dtypes}

    One exception to that: this function accumulates float32 data in
    float64 and rounds only the result to float32.

    ``W.grad2 - W.grad**2`` loses every digit when the per-sample
    gradients spread little around a large mean (gradients of
    ``1e9, 1e9 + 1, 1e9 + 2`` give 0 or less in float64). This
    function instead takes two passes over each tile of the output:
    the mean, then the squared deviations from it, corrected for the
    rounding of the mean,
    ``(sum_b d_b^2 - (sum_b d_b)^2 / B) / (B - ddof)``,
    ``d_b = W.grad[b, j, i] - mean``. Its error is a few rounding units
    of the result, whatever the mean. It costs a few flops per
    ``(b, j, i)`` without the BLAS, so it is slower than
    :func:`moments` by a constant factor, and it uses a fixed 350 KiB
    of scratch, not the per-sample array.

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob import linear
    >>> x = np.ones((3, 1))
    >>> ygrad = np.array([[1e9], [1e9 + 1], [1e9 + 2]])
    >>> linear.variance(x, ygrad)
    array([[0.66666667]])
    >>> g, g2 = linear.moments(x, ygrad)        # the one-pass formula:
    >>> bool(abs(g2 - g**2 - 2/3) > 0.5)        # a multiple of 128
    True
    >>> linear.variance(x, ygrad, ddof=1)
    array([[1.]])
    """
    ddof = _check_ddof(ddof)
    x, ygrad, B = _batch(x, ygrad, 1, "variance")
    if not B > ddof:
        raise ValueError(
            f"variance with ddof = {ddof:g} needs B > {ddof:g} samples; "
            f"got B = {B}" + (" (an unbiased estimate needs two)"
                              if B == 1 else ""))
    return _call(_gufuncs.linear_variance, (x, ygrad, ddof), out, 1,
                 result_dtype(x, ygrad))


def noise_scale(x, ygrad):
    """Gradient noise scale of a linear layer's weights from one batch.

    The simple noise scale of McCandlish et al. (2018),
    ``B_simple = tr(Sigma) / |G|^2``, from the unbiased estimates

    ``tr(Sigma) = B/(B-1) sum_{j,i} (W.grad2 - W.grad^2)``,
    ``|G|^2 = sum_{j,i} (B W.grad^2 - W.grad2) / (B-1)``,

    where ``Sigma`` is the covariance of one sample's gradient and ``G``
    the true gradient. Batches much smaller than ``B_simple`` are
    dominated by noise; much larger ones waste samples.

    Parameters
    ----------
    x : array_like, shape (..., B, I)
        Inputs of the layer.
    ygrad : array_like, shape (..., B, J)
        Per-sample derivatives of the loss with respect to the outputs.

    Returns
    -------
    NoiseScale
        Named tuple ``(B_simple, trace_sigma, grad_norm_sq)``; floats, or
        float64 arrays of the leading shape.

    Raises
    ------
    ValueError
        If ``B < 2`` (the estimates are unbiased and need two samples),
        `x` and `ygrad` differ in ``B``, have fewer than two dimensions,
        or their leading dimensions do not broadcast.
    TypeError
        If `x` or `ygrad` is not real.

    Notes
    -----
{ygrad}

    The data are converted to float64 (a copy for float32 data) and
    everything is computed in float64. The sum of ``W.grad2`` over the
    coordinates factorizes, ``(1/B) sum_b |ygrad[b]|^2 |x[b]|^2``, so
    ``W.grad2`` is never formed; ``W.grad`` is one GEMM.

    The values are reported as they come: with few samples or a small
    gradient, ``|G|^2`` and so ``B_simple`` can be negative, and
    ``|G|^2 = 0`` gives an infinite or NaN ``B_simple``.

    References
    ----------
    S. McCandlish, J. Kaplan, D. Amodei and the OpenAI Dota Team, "An
    empirical model of large-batch training", arXiv:1812.06162 (2018).

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob import linear
    >>> linear.noise_scale(np.ones((2, 1)), np.array([[1.0], [4.0]]))
    NoiseScale(B_simple=1.125, trace_sigma=4.5, grad_norm_sq=4.0)
    """
    x, ygrad, B = _batch(x, ygrad, 2,
                         "noise_scale (unbiased estimates need two samples)")
    _blas_size(x.shape[-1], "I")
    _blas_size(ygrad.shape[-1], "J")
    x = x.astype(np.float64, copy=False)
    ygrad = ygrad.astype(np.float64, copy=False)

    g = _gufuncs.linear_grad(x, ygrad)
    grad_sq = np.einsum("...ji,...ji->...", g, g)
    mean_sq = np.mean(np.einsum("...bi,...bi->...b", x, x)
                      * np.einsum("...bj,...bj->...b", ygrad, ygrad),
                      axis=-1)
    trace_sigma = B / (B - 1) * (mean_sq - grad_sq)
    grad_norm_sq = (B * grad_sq - mean_sq) / (B - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        B_simple = trace_sigma / grad_norm_sq

    values = (B_simple, trace_sigma, grad_norm_sq)
    if np.ndim(B_simple) == 0:
        return NoiseScale(*(float(v) for v in values))
    return NoiseScale(*values)


for _f in (forward, input_grad, grad, per_sample_grad, grad2, moments,
           variance, noise_scale):
    _f.__doc__ = (_f.__doc__.replace("{ygrad}", _YGRAD_RULE)
                  .replace("{dtypes}", _DTYPE_RULE))
del _f
