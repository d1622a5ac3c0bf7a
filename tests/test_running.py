"""The running-average kernels against the plain-loop reference.

Tolerances come from tests/reference.py: a bound on the rounding error of
both computations, ROUNDING_UNITS * U64 * A_t, plus the final rounding to
float32 for float32 output.
"""
import numpy as np
import pytest

import sgdprob
from reference import (ROUNDING_UNITS, U32, U64, fsum_prefix, running,
                       running_nd, tolerance)

KINDS = ["leaky_sum", "ema", "warmup_mean"]
FUNCS = {k: getattr(sgdprob, k) for k in KINDS}


def call(kind, x, N, initial=0.0, start=0, **kw):
    if kind == "warmup_mean":
        return sgdprob.warmup_mean(x, N, initial=initial, start=start, **kw)
    return FUNCS[kind](x, N, initial=initial, **kw)


def check(kind, x, N, initial=0.0, start=0, axis=-1, out=None):
    """Run the kernel and compare it with the reference, series by series."""
    x = np.asarray(x)
    y = call(kind, x, N, initial, start, axis=axis, out=out)
    if kind != "warmup_mean":
        start = 0
    ref, A = running_nd(kind, x, N, initial, start, axis)
    assert y.shape == ref.shape
    tol = tolerance(ref, A, y.dtype)
    finite = np.isfinite(ref)
    err = np.abs(y.astype(np.float64) - ref)
    assert np.all(err[finite] <= tol[finite]), (
        f"max error {err[finite].max()} over tolerance, "
        f"worst at {np.unravel_index(np.argmax(err - tol), err.shape)}")
    # non-finite reference values must come out identically (NaN as NaN)
    np.testing.assert_array_equal(y[~finite], ref[~finite])
    return y


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 9, 31, 100])
def test_one_series(kind, dtype, n, rng):
    x = rng.normal(size=n).astype(dtype)
    for N in [1.0, 1.5, 2.0, 7.3, 100.0, np.inf]:
        check(kind, x, N, initial=0.75, start=0)
        if kind == "warmup_mean":
            for start in [1, 3, 250]:
                check(kind, x, N, initial=0.75, start=start)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_axes_and_broadcast_parameters(kind, dtype, axis, rng):
    x = rng.normal(size=(3, 4, 21)).astype(dtype)
    loop = [s for i, s in enumerate(x.shape) if i != axis % 3]
    N = rng.choice([1.0, 2.5, 10.0, 1e3, np.inf], size=loop)
    initial = rng.normal(size=loop[-1:])
    start = rng.integers(0, 30, size=(loop[0], 1))
    check(kind, x, N, initial, start, axis=axis)


@pytest.mark.parametrize("kind", KINDS)
def test_parameter_sweep_adds_dimensions(kind, rng):
    """A sweep of N over a single series: one output row per N."""
    x = rng.normal(size=50)
    N = np.array([[1.0, 3.0], [10.0, np.inf]])
    y = check(kind, x, N, 0.5, np.array([0, 5]))
    assert y.shape == (2, 2, 50)
    y0 = check(kind, rng.normal(size=(50, 2)), N, 0.5, 0, axis=0)
    assert y0.shape == (2, 50, 2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_long_series_both_layouts(kind, dtype, rng):
    """Long enough for the blocked single-series path and, along axis 0 of
    a C-ordered matrix, for the path that advances many series at once."""
    x = rng.normal(loc=0.3, size=(1200, 300)).astype(dtype)
    N = np.where(np.arange(300) % 3 == 0, 50.0, 700.0)
    start = np.arange(300) % 5
    check(kind, x, N, 1.0, start, axis=0)
    check(kind, x.T, N, 1.0, start, axis=1)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strided_views(kind, dtype, rng):
    base = rng.normal(size=(40, 70)).astype(dtype)
    views = {
        "every other": base[::2, ::3],
        "reversed": base[::-1, ::-1],
        "transposed": base.T,
        "fortran": np.asfortranarray(base),
        "broadcast series": np.broadcast_to(base[0], (5, 70)),
        "broadcast time": np.broadcast_to(base[:, :1], (40, 70)),
    }
    for name, v in views.items():
        for axis in (0, 1):
            check(kind, v, 20.0, -0.5, 2, axis=axis)


@pytest.mark.parametrize("kind", KINDS)
def test_output_layout_follows_x(kind, rng):
    for order in "CF":
        x = np.asarray(rng.normal(size=(30, 40)), order=order)
        for axis in (0, 1):
            y = call(kind, x, 5.0, axis=axis)
            assert y.strides == x.strides


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_and_in_place(kind, dtype, rng):
    x = rng.normal(size=(6, 33)).astype(dtype)
    out = np.full((33, 6), np.nan, dtype=dtype).T     # non-contiguous out
    got = check(kind, x, 4.0, out=out)
    assert got is out
    xc = x.copy()
    got = call(kind, xc, 4.0, out=xc)
    assert got is xc
    # in place, the result is the out-of-place one exactly: same path
    np.testing.assert_array_equal(xc, call(kind, x, 4.0))


@pytest.mark.parametrize("kind", KINDS)
def test_empty(kind):
    for shape, axis in [((0,), -1), ((2, 0), -1), ((0, 5), -1), ((2, 0, 1), 1),
                        ((0, 3), 0)]:
        y = call(kind, np.zeros(shape), 3.0, axis=axis)
        assert y.shape == shape and y.dtype == np.float64


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonfinite_data_propagates(kind, dtype, rng):
    x = rng.normal(size=40).astype(dtype)
    x[10] = np.nan
    for N in (1.0, 3.0, np.inf):
        y = call(kind, x, N)
        if kind == "ema" and N == np.inf:
            continue        # x_t / inf: the state never moves (checked below)
        assert np.isnan(y[10:]).all() and np.isfinite(y[:10]).all()
    x[10] = np.inf
    with np.errstate(invalid="ignore"):
        check(kind, x, 3.0)


def test_infinite_horizon():
    x = np.random.default_rng(5).normal(size=1000)
    exact = fsum_prefix(x)
    _, A = running("leaky_sum", x, np.inf)
    tol = tolerance(exact, A, np.float64)
    assert np.all(np.abs(sgdprob.leaky_sum(x, np.inf) - exact) <= tol)
    t = np.arange(1, 1001)
    np.testing.assert_allclose(sgdprob.warmup_mean(x, np.inf), exact / t,
                               rtol=0, atol=tol.max() / 1)
    np.testing.assert_array_equal(sgdprob.ema(x, np.inf, initial=2.5), 2.5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_stream_equals_whole(kind, dtype, rng):
    """Continuing with initial = last output (and start = steps taken)
    reproduces one call on the whole series."""
    x = rng.normal(loc=1.0, size=(3, 1000)).astype(dtype)
    N = np.array([1.0, 30.0, 400.0])
    whole = call(kind, x, N, 0.0, 0)
    cuts = [0, 1, 9, 10, 333, 700, 1000]
    parts = []
    last = np.zeros(3)
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        part = call(kind, x[:, lo:hi], N, last, lo)
        parts.append(part)
        last = part[:, -1].astype(np.float64)
    chunked = np.concatenate(parts, axis=1)
    ref, A = running_nd(kind, x, N, 0.0, 0, -1)
    # each side is within its rounding bound of the exact value; for
    # float32 the carried state is rounded to float32 at each of the 6
    # cuts, and that error decays like everything else: 6 U32 |y|.
    tol = 2 * tolerance(ref, A, np.float64)
    if dtype == np.float32:
        tol = tol + 8 * U32 * np.abs(ref)
    assert np.all(np.abs(chunked.astype(float) - whole.astype(float)) <= tol)


def test_float32_state_is_float64():
    """10^6 ones with N = 10^5: float32 output within 1e-6 relative of the
    float64 answer, because the running state is float64."""
    x = np.ones(10**6, dtype=np.float32)
    for kind in KINDS:
        y32 = call(kind, x, 1e5)
        y64 = call(kind, x.astype(np.float64), 1e5)
        assert y32.dtype == np.float32
        rel = np.abs(y32 - y64) / np.abs(y64)
        assert rel.max() <= 1e-6, kind


@pytest.mark.parametrize("dtype, expected", [
    (np.bool_, np.float32), (np.int8, np.float32), (np.uint8, np.float32),
    (np.int16, np.float32), (np.uint16, np.float32), (np.float16, np.float32),
    (np.int32, np.float64), (np.uint32, np.float64), (np.int64, np.float64),
    (np.uint64, np.float64), (np.float32, np.float32),
    (np.float64, np.float64)])
def test_dtype_rule(dtype, expected):
    x = (np.arange(20) % 3).astype(dtype)
    for kind in KINDS:
        y = call(kind, x, 4.0)
        assert y.dtype == expected
        ref = call(kind, x.astype(expected), 4.0)
        np.testing.assert_array_equal(y, ref)


def test_byteswapped_input(rng):
    x = rng.normal(size=100)
    swapped = x.astype(x.dtype.newbyteorder())
    for kind in KINDS:
        np.testing.assert_array_equal(call(kind, swapped, 9.0),
                                      call(kind, x, 9.0))


def test_list_input():
    np.testing.assert_array_equal(sgdprob.leaky_sum([1, 1, 1], 2),
                                  [1.0, 1.5, 1.75])


def test_huge_horizon_float64():
    """N = 1e15: 1 - 1/N is still a distinct float64 and the EMA of a
    constant moves by about t / N; compared with the closed form."""
    from sgdprob import analytic
    x = np.full(1000, 3.0)
    y = sgdprob.ema(x, 1e15)
    t = np.arange(1, 1001)
    ref = analytic.ema_of_constant(3.0, 1e15, t)
    # the closed form is accurate to a few U64 relative; the kernel's
    # error bound is ROUNDING_UNITS U64 A_t with A_t <= 2 t |y_t|.
    assert np.all(np.abs(y - ref) <= 40 * U64 * 2 * t * np.abs(ref) + 4 * U64 * np.abs(ref))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layout_paths(kind, dtype, rng):
    """Shapes that take the other memory-order paths of the kernel: a few
    long series side by side, each with its own N; many series sharing N
    (more than fit one group of states); long warm-ups from start > 0."""
    few = rng.normal(loc=0.2, size=(2000, 3)).astype(dtype)
    check(kind, few, np.array([1.0, 40.0, np.inf]), 0.5,
          np.array([0, 9, 1000]), axis=0)
    many = rng.normal(size=(40, 1500)).astype(dtype)
    check(kind, many, 25.0, -1.0, 3, axis=0)
    check(kind, many, 25.0, -1.0, 0, axis=0)
    long = rng.normal(size=(2, 700)).astype(dtype)
    check(kind, long, np.inf, 2.0, 7)
    check(kind, long[:, ::-3], 500.0, 2.0, np.array([[0], [12345]]))


@pytest.mark.parametrize("layout", ["1-d", "2 columns", "3 columns",
                                    "reversed"])
def test_partial_sums_near_overflow(layout):
    """The block schemes sum several inputs before dividing or decaying;
    near the top of the float64 range those sums overflow where the plain
    loop does not. Such blocks are redone step by step, in every layout."""
    def arrange(v):
        if layout == "1-d":
            return v, -1
        if layout == "reversed":
            return v[::-1].copy()[::-1], -1
        k = int(layout[0])
        return np.repeat(v[:, None], k, axis=1), 0

    x, axis = arrange(np.full(40, 2e307))
    with np.errstate(all="raise"):     # and no spurious overflow flag
        y = sgdprob.warmup_mean(x, np.inf, axis=axis)
    assert np.all(np.isfinite(y))
    ref, _ = running_nd("warmup_mean", x, np.inf, 0.0, 0, axis)
    # for a constant input A_t <= 2 t |c| (tests/reference.py), so the
    # rounding bound is ROUNDING_UNITS U64 2 t |c|, here with t <= 40
    np.testing.assert_allclose(y, ref, rtol=ROUNDING_UNITS * U64 * 2 * 40)

    x, axis = arrange(np.array([-1e308, -1e308] + [0.0] * 30))
    with np.errstate(all="raise"):
        y = sgdprob.leaky_sum(x, np.inf, axis=axis, initial=1e308)
    ref, _ = running_nd("leaky_sum", x, np.inf, 1e308, 0, axis)
    np.testing.assert_array_equal(y, ref)      # 0, then -1e308 exactly


@pytest.mark.parametrize("kind", KINDS)
def test_nonfinite_outputs_match_the_plain_loop_in_every_layout(kind, rng):
    x = rng.normal(size=(64, 3)) * 1e307
    x[[5, 20, 40], [0, 1, 2]] = [np.inf, -np.inf, np.nan]
    x[21, 1] = np.inf
    with np.errstate(all="ignore"):
        for axis, data in [(0, x), (1, x.T), (0, np.asfortranarray(x))]:
            check(kind, data, 3.0, 0.0, 0, axis=axis)
            check(kind, data, np.inf, 0.0, 0, axis=axis)


@pytest.mark.parametrize("kind", KINDS)
def test_real_overflow_and_invalid_still_warn(kind):
    """Only the flags of the redone fast blocks are dropped: what the plain
    loop raises is reported in every layout."""
    big = np.full(64, 1e308)
    nan_maker = np.array([np.inf, -np.inf] + [1.0] * 62)
    for data, axis in [(big, -1), (np.repeat(big[:, None], 3, 1), 0),
                       (np.repeat(big[:, None], 30, 1), 0)]:
        if kind == "leaky_sum":
            with pytest.warns(RuntimeWarning, match="overflow"):
                call(kind, data, np.inf, axis=axis)
    with pytest.warns(RuntimeWarning, match="invalid value"):
        call(kind, nan_maker, 5.0)
