"""Property tests: identities of the running averages over generated
shapes, strides, dtypes and parameters (the other kernels have their own
test_properties_*.py modules)."""
import numpy as np
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import sgdprob
from reference import U32, running_nd, tolerance
from strategies import dtypes, leading_shapes, operand, relaid

KINDS = ["leaky_sum", "ema", "warmup_mean"]

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
horizons = st.one_of(st.floats(1.0, 1e4), st.just(np.inf), st.just(1.0))


@st.composite
def series(draw, max_dims=3):
    """A real array with odd strides: sliced, reversed or transposed."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=0,
                                  max_side=12))
    big = tuple(2 * s + 1 for s in shape)
    base = draw(hnp.arrays(np.float64, big, elements=finite)).astype(dtype)
    steps = tuple(draw(st.sampled_from([1, 2, -1, -2])) for _ in shape)
    view = base[tuple(slice(None, None, s) for s in steps)]
    view = view[tuple(slice(0, s) for s in shape)]
    if draw(st.booleans()):
        view = view.T
    return view


def call(kind, x, N, axis, initial=0.0, start=0, out=None):
    if kind == "warmup_mean":
        return sgdprob.warmup_mean(x, N, axis=axis, initial=initial,
                                   start=start, out=out)
    return getattr(sgdprob, kind)(x, N, axis=axis, initial=initial,
                                  out=out)


@settings(deadline=None)
@given(kind=st.sampled_from(KINDS), x=series(), N=horizons,
       initial=finite, start=st.integers(0, 50), data=st.data())
def test_matches_reference(kind, x, N, initial, start, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    y = call(kind, x, N, axis, initial, start)
    ref, A = running_nd(kind, x, N, initial,
                        start if kind == "warmup_mean" else 0, axis)
    assert y.dtype == x.dtype and y.shape == x.shape
    assert np.all(np.abs(y - ref) <= tolerance(ref, A, y.dtype))


@settings(deadline=None)
@given(kind=st.sampled_from(KINDS), x=series(), N=horizons,
       initial=finite, start=st.integers(0, 50), data=st.data())
def test_out_may_be_the_series(kind, x, N, initial, start, data):
    # each block of x is read before its outputs are written over it
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    ref, A = running_nd(kind, x, N, initial,
                        start if kind == "warmup_mean" else 0, axis)
    y = call(kind, x, N, axis, initial, start, out=x)
    assert y is x
    assert np.all(np.abs(y - ref) <= tolerance(ref, A, y.dtype))


@settings(deadline=None)
@given(kind=st.sampled_from(KINDS), shapes=leading_shapes(4),
       n=st.integers(0, 12), dtype=dtypes, data=st.data())
def test_parameters_broadcast_against_the_series(kind, shapes, n, dtype,
                                                 data):
    loop, N_shape, init_shape, start_shape = shapes
    axis = data.draw(st.integers(0, len(loop)))
    x = data.draw(operand(loop[:axis] + (n,) + loop[axis:], dtype,
                          finite))
    N = data.draw(operand(N_shape, np.float64, horizons))
    initial = data.draw(operand(init_shape, np.float64, finite))
    start = data.draw(operand(start_shape, np.int64, st.integers(0, 50)))
    if kind != "warmup_mean":
        start = np.zeros((), np.int64)
    ref, A = running_nd(kind, x, N, initial, start, axis)
    out = data.draw(st.one_of(st.none(),
                              relaid(np.full(ref.shape, np.nan, dtype))))
    y = call(kind, x, N, axis, initial, start, out=out)
    assert y.dtype == x.dtype and y.shape == ref.shape
    assert out is None or y is out
    assert np.all(np.abs(y - ref) <= tolerance(ref, A, y.dtype))


@settings(deadline=None)
@given(kind=st.sampled_from(KINDS), x=series(max_dims=2), N=horizons,
       cut=st.integers(0, 12), data=st.data())
def test_chunks_continue_the_stream(kind, x, N, cut, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    n = x.shape[axis]
    cut = min(cut, n)
    whole = call(kind, x, N, axis)
    first = call(kind, np.take(x, range(cut), axis=axis), N, axis)
    last = (np.take(first, [cut - 1], axis=axis).squeeze(axis)
            if cut else np.zeros(()))
    second = call(kind, np.take(x, range(cut, n), axis=axis), N, axis,
                  initial=last.astype(np.float64), start=cut)
    joined = np.concatenate([first, second], axis=axis)
    ref, A = running_nd(kind, x, N, 0.0, 0, axis)
    tol = 2 * tolerance(ref, A, np.float64)
    if x.dtype == np.float32:
        # both outputs are rounded to float32 (U32 |y| each), and the
        # state carried over the cut is too: that error decays with the
        # state, and A_t >= the decayed state (tests/reference.py).
        tol = tol + 2 * U32 * np.abs(ref) + U32 * A
    assert np.all(np.abs(joined.astype(float) - whole.astype(float)) <= tol)


@settings(deadline=None)
@given(x=series(max_dims=2), N=st.floats(1.0, 1e4), mu0=finite,
       data=st.data())
def test_leaky_sum_is_N_times_ema(x, N, mu0, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    y = sgdprob.leaky_sum(x, N, axis=axis, initial=N * mu0)
    mu = sgdprob.ema(x, N, axis=axis, initial=mu0)
    ref, A = running_nd("leaky_sum", x, N, N * mu0, 0, axis)
    tol = 2 * tolerance(ref, A, y.dtype) + N * 2 * tolerance(
        ref / N, A / N, mu.dtype)
    assert np.all(np.abs(y.astype(float) - N * mu.astype(float)) <= tol)


@settings(deadline=None)
@given(c=finite, N=horizons, n=st.integers(0, 300),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_warmup_mean_of_constant_is_the_constant(c, N, n, dtype):
    c = dtype(c)
    y = sgdprob.warmup_mean(np.full(n, c, dtype=dtype), N, initial=123.0)
    # the exact answer is c; the plain loop is within 3 U64 A_t of it and
    # the kernel within tolerance() of the plain loop.
    ref, A = running_nd("warmup_mean", np.full(n, c, dtype=dtype), N, 123.0,
                        0, -1)
    bound = tolerance(ref, A, dtype) + 3 * 2.0**-53 * A
    assert np.all(np.abs(y.astype(float) - float(c)) <= bound)
