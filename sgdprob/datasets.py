"""A real data set to run the averages on, and its per-sample gradients.

- :func:`load_diabetes`        the 442-patient diabetes data of Efron,
  Hastie, Johnstone and Tibshirani (2004), shipped with sgdprob
- :func:`least_squares_grads`  W.grad of every sample for the squared
  error of a linear model: the stream that SGD averages

Only NumPy is needed; the data file and its source and licence are in
``sgdprob/data/``.
"""
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["Dataset", "load_diabetes", "least_squares_grads"]


class Dataset(NamedTuple):
    """A regression data set: features, response and feature names."""

    X: np.ndarray
    """Features, shape (n, d), float64: one row per sample."""
    y: np.ndarray
    """Response, shape (n,), float64."""
    feature_names: tuple
    """The names of the d columns of X."""


def load_diabetes(*, standardize=True):
    """The diabetes data of Efron, Hastie, Johnstone and Tibshirani (2004).

    Ten baseline measurements of 442 diabetes patients (age, sex, body
    mass index, average blood pressure and six blood serum measurements)
    and the response, a quantitative measure of disease progression one
    year after baseline.

    Parameters
    ----------
    standardize : bool, optional
        If True (the default), shift and scale each feature column to mean
        0 and standard deviation 1 (the population one, ``ddof=0``). If
        False, return the raw measurements. The response is never scaled.

    Returns
    -------
    Dataset
        A named tuple ``(X, y, feature_names)``: `X` of shape (442, 10)
        and `y` of shape (442,), both float64, and `feature_names`, the
        tuple ``('age', 'sex', 'bmi', 'bp', 's1', ..., 's6')``.

    Raises
    ------
    TypeError
        If `standardize` is not a bool.

    Notes
    -----
    Standardising puts every feature on the same scale, so that one
    learning rate suits every coordinate of a linear model's parameter:
    ``X[:, j] = (raw[:, j] - mean_j) / std_j``.

    The file ``sgdprob/data/diabetes.csv`` is the raw table as scikit-learn
    distributes it (BSD 3-Clause); ``sgdprob/data/README.md`` gives its
    source, licence and the meaning of each column. Cite B. Efron,
    T. Hastie, I. Johnstone and R. Tibshirani, "Least Angle Regression",
    The Annals of Statistics 32(2), 407-499, 2004, when you use it.

    Examples
    --------
    >>> from sgdprob.datasets import load_diabetes
    >>> X, y, names = load_diabetes()
    >>> X.shape, y.shape
    ((442, 10), (442,))
    >>> names[:4]
    ('age', 'sex', 'bmi', 'bp')
    >>> bool(abs(X[:, 2].std() - 1.0) < 1e-12)
    True
    """
    if not isinstance(standardize, (bool, np.bool_)):
        raise TypeError(
            f"standardize must be True or False, not {standardize!r}")

    path = resources.files("sgdprob").joinpath("data", "diabetes.csv")
    with path.open("r", encoding="ascii") as f:
        header = f.readline().strip().split(",")
        table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)

    X, y = table[:, :-1], table[:, -1].copy()
    if standardize:
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    else:
        X = X.copy()
    return Dataset(X, y, tuple(header[:-1]))


def least_squares_grads(X, y, phi, *, intercept=True):
    """Per-sample gradients of the squared error of a linear model.

    For sample ``r`` with features ``x_r`` and response ``y_r`` the loss is

        ``l_r(phi) = 1/2 (x_r . phi - y_r)^2``

    and its gradient, the sample's ``W.grad``, is

        ``g_r = (x_r . phi - y_r) x_r``.

    With ``intercept=True`` a feature equal to 1 is appended to every
    ``x_r``, so `phi` has ``d + 1`` entries and its last one is the
    intercept.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Features, one row per sample.
    y : array_like, shape (n,)
        Responses.
    phi : array_like, shape (d + 1,) or (d,)
        Parameter vector: ``d + 1`` entries with an intercept, ``d``
        without.
    intercept : bool, optional
        Whether to append the constant feature. Default True.

    Returns
    -------
    G : ndarray, shape (n, d + 1) or (n, d)
        Row ``r`` is ``g_r``, in float64. ``G.mean(axis=0)`` is the
        gradient of the mean loss, which vanishes at the least-squares
        solution.

    Raises
    ------
    ValueError
        If a shape is wrong (naming the parameter) or an input is not
        finite.
    TypeError
        If an input is not real.

    Notes
    -----
    The mean of the rows is the full-batch gradient
    ``g = (1/n) X~^T (X~ phi - y)``, where ``X~`` is `X` with the column
    of ones when `intercept` is True; the rows scatter about it with
    covariance ``Sigma = (1/n) sum_r (g_r - g)(g_r - g)^T``, the noise
    that SGD sees in one sampled gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from sgdprob.datasets import least_squares_grads
    >>> X = np.array([[1.0], [2.0]])
    >>> least_squares_grads(X, [1.0, 1.0], [1.0, 0.5])   # 1.0 x + 0.5
    array([[0.5, 0.5],
           [3. , 1.5]])
    """
    X = _real(X, "X", 2)
    y = _real(y, "y", 1)
    phi = _real(phi, "phi", 1)
    if not isinstance(intercept, (bool, np.bool_)):
        raise TypeError(f"intercept must be True or False, not {intercept!r}")

    n, d = X.shape
    if y.shape[0] != n:
        raise ValueError(
            f"y must have one entry per row of X ({n}); got {y.shape[0]}")
    p = d + 1 if intercept else d
    if phi.shape[0] != p:
        what = "d + 1 (with the intercept last)" if intercept else "d"
        raise ValueError(
            f"phi must have {what} = {p} entries for X with d = {d} "
            f"columns; got {phi.shape[0]}")

    if intercept:
        X = np.hstack([X, np.ones((n, 1))])
    residual = X @ phi - y
    return residual[:, None] * X


def _real(value, name, ndim):
    """value as a finite float64 array with ndim dimensions."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers, not dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimension{'s' * (ndim > 1)}; "
            f"got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite")
    return arr
