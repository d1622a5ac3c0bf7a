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


@pytest.mark.parametrize("kind", KINDS)
def test_python_ints_beyond_float64(kind):
    with pytest.raises(ValueError, match=r"\bN is too large"):
        call(kind, np.ones(3), 10**400)
    with pytest.raises(ValueError, match=r"\binitial is too large"):
        call(kind, np.ones(3), 2.0, initial=-10**400)
    # within float64's range a big int is just a big horizon
    assert call(kind, np.ones(3), 10**30).shape == (3,)


@pytest.mark.parametrize("kind", KINDS)
def test_long_double_and_masked_x_are_refused(kind):
    with pytest.raises(TypeError, match=r"\bx is .*long double"):
        call(kind, np.ones(3, dtype=np.longdouble), 2.0)
    masked = np.ma.masked_array([1.0, 1e9, 3.0], mask=[0, 1, 0])
    with pytest.raises(TypeError, match=r"\bx is a masked array"):
        call(kind, masked, 2.0)


def test_start_up_to_the_int64_limit():
    x = np.ones(3)
    big = np.int64(2**63 - 1)
    y = sgdprob.warmup_mean(x, 5.0, start=big, initial=1.0)
    np.testing.assert_array_equal(y, sgdprob.ema(x, 5.0, initial=1.0))
    with pytest.raises(ValueError, match="start must be below 2"):
        sgdprob.warmup_mean(x, 5.0, start=np.uint64(2**63))


def test_float16_start_casts_without_warnings():
    with np.errstate(all="raise"):
        a = sgdprob.warmup_mean(np.arange(4.0), 3.0, initial=1.0,
                                start=np.float16(3))
    np.testing.assert_array_equal(
        a, sgdprob.warmup_mean(np.arange(4.0), 3.0, initial=1.0, start=3))


@pytest.mark.parametrize("args, error, match", [
    (("3", 2.0, 3), TypeError, r"\bc\b"),
    ((1.0, "2", 3), TypeError, r"\bN\b"),
    ((1.0, 2.0, 3, None), TypeError, r"\binitial\b"),
    ((1.0, 2.0, 1.5), ValueError, r"\bt must be a whole"),
    ((1j, 2.0, 3), TypeError, r"\bc\b"),
])
def test_analytic_checks_its_arguments(args, error, match):
    from sgdprob import analytic
    with pytest.raises(error, match=match):
        analytic.leaky_sum_of_constant(*args)


def test_analytic_at_t_zero_is_the_initial_value():
    from sgdprob import analytic
    with np.errstate(all="raise"):
        assert analytic.leaky_sum_of_constant(np.inf, 3.0, 0,
                                              initial=2.0) == 2.0
        assert analytic.ema_of_constant(np.inf, 3.0, 0, initial=2.0) == 2.0
    assert analytic.warmup_mean_of_constant(4.0, np.inf, 7) == 4.0
