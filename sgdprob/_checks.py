"""Argument checks shared by the Python layer of sgdprob.

Each check returns the argument as NumPy wants it, or raises an exception
whose message names the parameter, before any C loop runs.
"""
import math
import numbers

import numpy as np


def real_array(value, name, *, data=False):
    """value as a real ndarray (bool, integer or float), else TypeError.

    A parameter (``data=False``) may also be a Python int too large for
    int64: it becomes float64. Data may not be an object array.
    """
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a masked array, whose mask sgdprob would ignore; "
            f"pass {name}.filled(np.nan) or {name}.compressed()")
    arr = np.asarray(value)
    if (not data and arr.dtype == object
            and all(isinstance(v, numbers.Real) for v in arr.flat)):
        try:
            arr = arr.astype(np.float64)
        except OverflowError:
            raise ValueError(f"{name} is too large for a float64") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers (bool, integer or float), "
            f"not dtype {arr.dtype}")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        raise TypeError(
            f"{name} is {arr.dtype} (long double); sgdprob computes in "
            f"float64 at most: pass {name}.astype(np.float64)")
    return arr


def whole_numbers(value, name, *, low):
    """value as int64, each a whole number in [low, 2**63), else
    ValueError (TypeError if not real)."""
    if type(value) is int and low <= value < 2 ** 63:     # the common case
        return np.asarray(value, dtype=np.int64)
    arr = real_array(value, name)
    if arr.dtype.kind == "f":
        arr = arr.astype(np.float64, copy=False)
        whole = np.isfinite(arr) & (arr == np.round(arr))
        if not whole.all():
            raise ValueError(f"{name} must be a whole number; "
                             f"got {arr[~whole].flat[0]!r}")
    if np.any(arr < low):
        raise ValueError(
            f"{name} must be >= {low}; got {arr[arr < low].flat[0]!r}")
    # compare in the array's own kind: 2**63 - 1 as a float is 2**63
    limit = 2.0 ** 63 if arr.dtype.kind == "f" else np.iinfo(np.int64).max
    too_big = arr >= limit if arr.dtype.kind == "f" else arr > limit
    if np.any(too_big):
        raise ValueError(f"{name} must be below 2**63")
    return arr.astype(np.int64)


def broadcast_shape(shapes, described):
    """np.broadcast_shapes(*shapes), or ValueError naming the operands.

    `described` names them with their shapes. Shapes that broadcast to
    more elements than NumPy can index are told apart from shapes that
    do not broadcast at all: NumPy raises the same ValueError for both.
    """
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        pass
    dims = []
    for k in range(1, max(len(s) for s in shapes) + 1):
        sizes = {s[-k] for s in shapes if len(s) >= k} - {1}
        if len(sizes) > 1:
            raise ValueError(f"{described} do not broadcast")
        dims.append(sizes.pop() if sizes else 1)
    shape = tuple(reversed(dims))
    raise ValueError(
        f"{described} broadcast to {shape}, {math.prod(shape)} elements: "
        f"too large for NumPy to index")


def result_dtype(*arrays):
    """float32 if every array casts to it exactly, else float64: the loop
    NumPy's ufunc type resolution picks from float32 and float64 loops."""
    if all(np.can_cast(a.dtype, np.float32) for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def out_operand(out, count):
    """out as a ufunc with `count` outputs wants it: None, one array, or a
    tuple of `count` (NumPy 2.4 refuses out=None for several outputs)."""
    if out is None:
        return None if count == 1 else (None,) * count
    if count == 1 and isinstance(out, tuple):
        if len(out) != 1:
            raise ValueError("out must be a single array")
        out = out[0]
    if count > 1 and (not isinstance(out, tuple) or len(out) != count):
        raise ValueError(f"out must be a tuple of {count} arrays")
    if count > 1:
        # Two outputs in the same memory would overwrite each other,
        # element by element, leaving a mixture of both results.
        arrays = [(k, o) for k, o in enumerate(out)
                  if isinstance(o, np.ndarray)]
        for i, (k, a) in enumerate(arrays):
            for m, b in arrays[i + 1:]:
                if np.shares_memory(a, b):
                    raise ValueError(
                        f"out[{k}] and out[{m}] share memory; each "
                        f"output needs an array of its own")
    return out
