"""Hypothesis strategies shared by the property tests of the kernels.

`operand` draws an array of a given shape and data type and lays it out
in memory the way user code meets arrays: axes stored in any order
(transposed views), every axis stepped by 1 or 2 in either direction
(sliced and reversed views), or repeated along one axis with stride 0
(np.broadcast_to). The cells of the storage that the view skips hold NaN,
(0 for integers), so a kernel that reads outside its operand shows it.
"""
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = [np.float32, np.float64]
dtypes = st.sampled_from(DTYPES)


def unit(dtype):
    """Unit roundoff u: a rounding to nearest errs by at most u |v| in the
    normal range."""
    return float(np.finfo(dtype).eps) / 2


def subnormal(dtype):
    """Smallest subnormal s: below the normal range a rounding errs by at
    most s / 2, whatever the value."""
    return float(np.finfo(dtype).smallest_subnormal)


def floats(dtype, bound=1e3, tiny=0.0):
    """Finite elements of `dtype` in [-bound, bound], subnormals
    included; magnitudes below `tiny` become 0."""
    width = np.finfo(dtype).bits
    elements = st.floats(-bound, bound, width=width)
    if tiny > 0:
        elements = elements.map(lambda v: v if abs(v) >= tiny else 0.0)
    return elements


@st.composite
def relaid(draw, a):
    """A writable view holding the values of `a` in a drawn layout."""
    a = np.asarray(a)
    order = draw(st.permutations(range(a.ndim)))
    steps = [draw(st.sampled_from([1, 2, -1, -2])) for _ in range(a.ndim)]
    fill = np.nan if a.dtype.kind == "f" else 0
    store = np.full(tuple(abs(steps[k]) * a.shape[k] for k in order),
                    fill, dtype=a.dtype)
    view = store[tuple(slice(None, None, steps[k]) for k in order)
                 + (Ellipsis,)]
    view = view.transpose(np.argsort(order))
    view[...] = a
    return view


@st.composite
def operand(draw, shape, dtype, elements=None, broadcast=True):
    """An array of `shape` and `dtype` in a drawn memory layout; with
    `broadcast`, possibly a read-only view with stride 0 along an axis."""
    elements = floats(dtype) if elements is None else elements
    long_axes = [k for k, n in enumerate(shape) if n > 1]
    if broadcast and long_axes and draw(st.integers(0, 4)) == 0:
        k = draw(st.sampled_from(long_axes))
        thin = shape[:k] + (1,) + shape[k + 1:]
        values = draw(hnp.arrays(dtype, thin, elements=elements))
        return np.broadcast_to(draw(relaid(values)), shape)
    values = draw(hnp.arrays(dtype, shape, elements=elements))
    return draw(relaid(values))


def leading_shapes(count, max_dims=2, max_side=3):
    """`count` loop shapes that broadcast together, as NumPy's are."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=count, min_dims=0, max_dims=max_dims, min_side=1,
        max_side=max_side).map(lambda s: s.input_shapes)
