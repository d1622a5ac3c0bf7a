"""Argument checks shared by the SGD simulations and their closed forms.

The model is SGD or Langevin dynamics on ``L(Phi) = 1/2 Phi^T H Phi`` with
gradient noise of covariance ``Sigma1`` per sample. Both the simulations
(sgdprob._montecarlo) and the closed forms (sgdprob.analytic) work in the
eigenbasis ``H = Q diag(lam) Q^T``; the helpers here check the matrices
and return that basis.
"""
import math
import numbers

import numpy as np

# A matrix counts as symmetric when |A - A^T| <= _SYM_RTOL max|A|: room
# for the rounding of a product such as X^T X / n, none for a real
# asymmetry. The symmetric part (A + A^T) / 2 is then used.
_SYM_RTOL = 1e-10
# Sigma1 counts as positive semi-definite when its smallest eigenvalue is
# at least -_PSD_RTOL times its largest magnitude (an eigensolver's
# rounding); such small negative eigenvalues are taken as 0.
_PSD_RTOL = 1e-10


def real_array(value, name):
    """value as a float64 ndarray of real numbers, finite."""
    arr = np.asarray(value)
    if arr.dtype == object and all(isinstance(v, numbers.Real)
                                   for v in arr.flat):
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers, not dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def positive(value, name):
    """value as a finite float > 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Real, np.ndarray)) or np.ndim(value) != 0:
        raise TypeError(f"{name} must be a real number, not {value!r}")
    x = float(value)
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be finite and > 0; got {x!r}")
    return x


def count(value, name, least=1):
    """value as an int in [least, 2**63): an integer, or a float with a
    whole value (the C loops count in 64-bit integers)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Real, np.ndarray)) or np.ndim(value) != 0:
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if isinstance(value, numbers.Integral) or (
            isinstance(value, np.ndarray) and value.dtype.kind in "iu"):
        n = int(value)
    else:
        x = float(value)
        if not (math.isfinite(x) and x == round(x)):
            raise ValueError(f"{name} must be a whole number; got {x!r}")
        n = int(x)
    if n < least:
        raise ValueError(f"{name} must be >= {least}; got {n}")
    if n >= 2 ** 63:
        raise ValueError(f"{name} must be below 2**63; got {n}")
    return n


def symmetric(value, name, d=None):
    """value as a symmetric (d, d) float64 matrix; a scalar is 1 x 1."""
    arr = real_array(value, name)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(
            f"{name} must be a square (d, d) matrix with d >= 1; got "
            f"shape {arr.shape}")
    if d is not None and arr.shape[0] != d:
        raise ValueError(
            f"{name} must be ({d}, {d}), the shape of H; got {arr.shape}")
    gap = np.abs(arr - arr.T).max()
    if gap > _SYM_RTOL * np.abs(arr).max():
        raise ValueError(
            f"{name} must be symmetric; max |{name} - {name}^T| = {gap:.3g}")
    return (arr + arr.T) / 2


def hessian(H):
    """(lam, Q): eigenvalues ascending and eigenvectors of a symmetric H."""
    lam, Q = np.linalg.eigh(symmetric(H, "H"))
    return lam, Q


def positive_definite(lam):
    """Raise ValueError unless H is positive definite in floating point:
    its smallest eigenvalue above d eps times its largest magnitude (below
    that, rounding alone could have made it positive)."""
    if lam[0] <= len(lam) * np.finfo(float).eps * np.abs(lam).max():
        raise ValueError(
            "H must be positive definite for a stationary law to exist; "
            f"its smallest eigenvalue is {lam[0]:.6g}")


def noise(Sigma1, d):
    """Sigma1 checked: symmetric (d, d) and positive semi-definite."""
    S = symmetric(Sigma1, "Sigma1", d)
    w = np.linalg.eigvalsh(S)
    if w[0] < -_PSD_RTOL * np.abs(w).max():
        raise ValueError(
            "Sigma1 must be positive semi-definite (a covariance); its "
            f"smallest eigenvalue is {w[0]:.6g}")
    return S


def noise_sqrt(S):
    """The symmetric positive semi-definite square root of a checked S.

    Eigenvalues below d eps times the largest are rounding noise about 0
    (an exact zero comes out of the eigensolver as +-eps |S|) and are
    taken as 0: their square roots, about sqrt(eps |S|), would put an
    error of 1e-8 relative into the root.
    """
    w, V = np.linalg.eigh(S)
    floor = len(w) * np.finfo(float).eps * np.abs(w).max()
    w = np.where(w > floor, w, 0.0)
    return (V * np.sqrt(w)) @ V.T


def in_basis(Q, S):
    """Q^T S Q, symmetric."""
    Sp = Q.T @ S @ Q
    return (Sp + Sp.T) / 2
