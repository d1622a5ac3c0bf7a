"""Bad input: a clear exception naming the parameter, never a crash, and
the caller's arrays untouched."""
import numpy as np
import pytest

import sgdprob
from sgdprob import gufuncs

KINDS = ["leaky_sum", "ema", "warmup_mean"]


def call(kind, *args, **kw):
    return getattr(sgdprob, kind)(*args, **kw)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("N", [0.999999, 0.0, -3.0, np.nan, -np.inf,
                               [2.0, 0.5], [[np.nan]]])
def test_bad_N(kind, N):
    x = np.ones((2, 5))
    before = x.copy()
    with pytest.raises(ValueError, match=r"\bN\b"):
        call(kind, x, N)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("N", [1.0, 1, True, np.float32(1.0), 2**70])
def test_N_edge_values_accepted(N):
    y = sgdprob.leaky_sum(np.array([1.0, 2.0]), N)
    assert y.shape == (2,)


@pytest.mark.parametrize("start, match", [
    (-1, r"start must be >= 0"), (1.5, r"start must be a whole"),
    (np.nan, r"start must be a whole"), (np.inf, r"start must be a whole"),
    ([0, -2], r"start must be >= 0"), (2.0**63, r"start must be below"),
])
def test_bad_start(start, match):
    with pytest.raises(ValueError, match=match):
        sgdprob.warmup_mean(np.ones((2, 4)), 3.0, start=start)


def test_integral_float_start_accepted():
    a = sgdprob.warmup_mean(np.arange(5.0), 3.0, initial=1.0, start=4.0)
    b = sgdprob.warmup_mean(np.arange(5.0), 3.0, initial=1.0, start=4)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [np.array([1 + 2j, 3j]),
                                 np.array([1.0, 2.0], dtype=object),
                                 np.array(["a", "b"]),
                                 np.array([1, 2], dtype="datetime64[s]")])
def test_non_real_x_is_type_error(kind, bad):
    with pytest.raises(TypeError, match=r"\bx\b"):
        call(kind, bad, 3.0)


@pytest.mark.parametrize("kind", KINDS)
def test_non_real_parameters_are_type_errors(kind):
    with pytest.raises(TypeError, match=r"\bN\b"):
        call(kind, np.ones(3), 2.0 + 1j)
    with pytest.raises(TypeError, match=r"\binitial\b"):
        call(kind, np.ones(3), 2.0, initial="zero")
    if kind == "warmup_mean":
        with pytest.raises(TypeError, match=r"\bstart\b"):
            call(kind, np.ones(3), 2.0, start=1j)


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_that_do_not_broadcast(kind):
    with pytest.raises(ValueError, match=r"N \(3,\).*do not broadcast"):
        call(kind, np.ones((4, 5)), np.full(3, 2.0))
    with pytest.raises(ValueError, match=r"initial \(2,\)"):
        call(kind, np.ones((4, 5)), 2.0, initial=np.zeros(2))


@pytest.mark.parametrize("kind", KINDS)
def test_bad_axis_and_scalar_x(kind):
    with pytest.raises(np.exceptions.AxisError):
        call(kind, np.ones((2, 3)), 2.0, axis=2)
    with pytest.raises(ValueError, match=r"\bx\b.*at least one dimension"):
        call(kind, 1.0, 2.0)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_out(kind):
    x = np.ones((3, 4))
    with pytest.raises(ValueError):
        call(kind, x, 2.0, out=np.empty((3, 5)))
    ro = np.empty((3, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        call(kind, x, 2.0, out=ro)
    with pytest.raises(TypeError):
        call(kind, x, 2.0, out=np.empty((3, 4), dtype=np.int64))


@pytest.mark.parametrize("name", KINDS)
def test_raw_gufunc_invalid_parameter_gives_nan_and_flag(name):
    """Direct calls of the gufuncs do no Python-side checks: an invalid
    N (or start) makes that series NaN and raises the invalid flag."""
    g = getattr(gufuncs, name)
    extra = (0,) if name == "warmup_mean" else ()
    x = np.ones((3, 20))
    N = np.array([2.0, 0.5, np.nan])
    with pytest.warns(RuntimeWarning, match="invalid value"):
        y = g(x, N, 0.0, *extra)
    assert np.isfinite(y[0]).all()
    assert np.isnan(y[1:]).all()
    with np.errstate(invalid="raise"):
        with pytest.raises(FloatingPointError):
            g(x, N, 0.0, *extra)
    # the same along axis 0, where the kernel advances the series together
    with pytest.warns(RuntimeWarning, match="invalid value"):
        y0 = g(x.T, N, 0.0, *extra, axes=[(0,)] + [()] * (2 + len(extra))
               + [(0,)])
    np.testing.assert_array_equal(np.isnan(y0), np.isnan(y).T)


def test_raw_warmup_mean_negative_start():
    with pytest.warns(RuntimeWarning, match="invalid value"):
        y = gufuncs.warmup_mean(np.ones((2, 5)), 3.0, 0.0,
                                np.array([0, -1]))
    assert np.isfinite(y[0]).all() and np.isnan(y[1]).all()
