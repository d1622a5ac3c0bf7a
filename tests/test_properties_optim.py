"""Property tests of rmsprop_step and adam_step: elementwise ufuncs whose
arguments broadcast, against the plain NumPy formulas in long double,
over generated shapes, layouts and data types; and out= naming the state
arrays gives the same as a fresh result.

Rounding bounds. The kernels compute in double (u = 2**-53) and round
each result once to its data type (u_T |v| + s_T / 2, s_T the smallest
subnormal). Data are drawn so that no double intermediate leaves the
normal range: float32 values are at least 2**-149 in magnitude (or 0) and
float64 ones are kept at least 2**-300, so products of two stay above
2**-600. The state and g2 are >= 0, as means of squares are.

The running mean ``mix(v, x, n) = (1 - 1/n) v + x / n`` (x itself for
n = 1) takes 5 roundings: 1/n, 1 - 1/n, the product, x/n and the sum. The
error of fl(1/n), u/n, times |v|, and the other four, each at most u
times |(1 - 1/n) v| or |x/n| or their sum, give
u (|v|/n + 3 |(1 - 1/n) v| + 2 |x/n| + |mix|). adam_step rounds a step
number t above 2**53 to double, n (1 + d) with |d| <= u, which moves mix
by at most u (|v| + |x|) / n. In all, u (4 |v| + 4 |x/n|), as
2/n + 4 (1 - 1/n) <= 4.

The step ``q = eta v / (sqrt(s) + eps)``: if s errs by e_s, sqrt(s) errs
by at most min(sqrt(e_s), e_s / sqrt(s)) before its own rounding, and
the denominator D by e_D <= that + u (2 sqrt(s) + eps) + second order.
With the numerator's error e_N and rho = e_D / D < 1, fl(N / D) errs by
at most (e_N + |N| rho) / (D (1 - rho)) + u |q|.
"""
import numpy as np
from hypothesis import given, settings, strategies as st

import sgdprob
from strategies import (dtypes, leading_shapes, operand, relaid, subnormal,
                        unit)

U = unit(np.float64)
U_REF = float(np.finfo(np.longdouble).eps) / 2
# every double rounding, against the long double reference
UU = U + U_REF

horizons = st.one_of(st.just(1.0), st.floats(1.0, 1e4), st.just(np.inf))


def ld(a):
    return np.asarray(a).astype(np.longdouble)


def values(dtype, low=-1e3, high=1e3):
    """Elements of `dtype` in [low, high] that keep double intermediates
    normal (module docstring)."""
    elements = st.floats(low, high, width=np.finfo(dtype).bits)
    if dtype == np.float64:
        elements = elements.map(lambda v: v if abs(v) >= 2.0 ** -300
                                else 0.0)
    return elements


@st.composite
def array_args(draw, shape, nonneg=False):
    dtype = draw(dtypes)
    return draw(operand(shape, dtype, values(dtype, 0.0 if nonneg
                                             else -1e3)))


@st.composite
def param(draw, shape, elements):
    """A float64 parameter: a Python float, or an array of `shape`."""
    if draw(st.booleans()):
        return draw(elements)
    return draw(operand(shape, np.float64, elements))


def quiet():
    """With eps = 0 a state of 0 makes the step 0/0 or x/0: NaN or inf,
    as IEEE arithmetic has it; with a tiny eps the step may overflow.
    Both are checked as such."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


def mix(v, x, n):
    """The running mean in long double, and its rounding bound."""
    value = np.where(n == 1, x, (1 - 1 / n) * v + x / n)
    return value, UU * (4 * np.abs(v) + 4 * np.abs(x / n))


def step(num, e_num, s, e_s, eps):
    """q = num / (sqrt(s) + eps) in long double, its rounding bound and
    where that bound holds (rho <= 1/2)."""
    root = np.sqrt(s)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_root = np.minimum(np.sqrt(e_s), np.where(root > 0, e_s / root,
                                                   np.inf))
        den = root + eps
        e_den = e_root + UU * (2 * root + 2 * e_root + eps)
        rho = e_den / den
        q = num / den
        e_q = (e_num + np.abs(num) * rho) / (den * (1 - rho))
    ok = rho <= 0.5
    return q, np.where(ok, e_q + UU * (np.abs(q) + e_q), np.inf), ok


def stored(bound, ref, dtype):
    """bound plus the final rounding of ref to dtype."""
    return bound + unit(dtype) * np.abs(ref) + subnormal(dtype) / 2


def assert_within(got, ref, bound, ok):
    """got within bound of ref where ok; equal (NaN too) elsewhere. A
    value that may round beyond the largest of got's type, max + ulp/2,
    may be inf of its sign (a tiny eps can make the step that large)."""
    top = np.finfo(got.dtype).max
    top = ld(top) + (ld(top) - ld(np.nextafter(top, 0))) / 2
    got = ld(got)
    ref = np.broadcast_to(ref, got.shape)
    bound = np.broadcast_to(bound, got.shape)
    ok = np.broadcast_to(ok, got.shape).copy()
    over = ok & np.isinf(got) & (np.sign(got) == np.sign(ref)) & (
        np.abs(ref) + bound >= top)
    ok &= ~over
    assert np.all(np.abs(got[ok] - ref[ok]) <= bound[ok]), (
        f"worst error / bound "
        f"{np.max(np.abs(got[ok] - ref[ok]) / bound[ok])}")
    rest = ~ok & ~np.isfinite(ref)
    np.testing.assert_array_equal(got[rest], ref[rest].astype(got.dtype))


def in_place_matches(fn, state, args, kwargs, fresh, data):
    """fn(*state, *args, out=state) updates the state arrays, laid out
    as drawn, to the values of a fresh call on the same inputs."""
    shape = fresh[0].shape
    mine = [data.draw(relaid(np.broadcast_to(a, shape).astype(
        fresh[0].dtype))) for a in state]
    with quiet():
        again = fn(*[a.copy() for a in mine], *args, **kwargs)
        got = fn(*mine, *args, **kwargs, out=tuple(mine))
    assert all(g is m for g, m in zip(got, mine))
    for a, b in zip(got, again):
        np.testing.assert_array_equal(a, b)


@settings(deadline=None)
@given(shapes=leading_shapes(7, max_dims=3), data=st.data())
def test_rmsprop_step_is_the_formula(shapes, data):
    phi = data.draw(array_args(shapes[0]))
    s = data.draw(array_args(shapes[1], nonneg=True))
    g = data.draw(array_args(shapes[2]))
    g2 = data.draw(array_args(shapes[3], nonneg=True))
    eta = data.draw(param(shapes[4], values(np.float64, 0.0)))
    N = data.draw(param(shapes[5], horizons))
    eps = data.draw(param(shapes[6], values(np.float64, 0.0, 1.0)))
    T = np.result_type(phi, s, g, g2)

    with quiet():
        phi1, s1 = sgdprob.rmsprop_step(phi, s, g, g2, eta=eta, N=N,
                                        eps=eps)
    assert phi1.dtype == s1.dtype == T
    assert phi1.shape == s1.shape == np.broadcast_shapes(
        *map(np.shape, (phi, s, g, g2, eta, N, eps)))

    ref_s, e_s = mix(ld(s), ld(g2), ld(N))
    num = ld(eta) * ld(g)
    q, e_q, ok = step(num, UU * np.abs(num), ref_s, e_s, ld(eps))
    ref_phi = ld(phi) - q
    e_phi = e_q + UU * (np.abs(ld(phi)) + np.abs(q) + e_q)
    assert_within(s1, ref_s, stored(e_s, ref_s, T), True)
    assert_within(phi1, ref_phi, stored(e_phi, ref_phi, T), ok)

    in_place_matches(sgdprob.rmsprop_step, (phi, s), (g, g2),
                     dict(eta=eta, N=N, eps=eps), (phi1, s1), data)


@settings(deadline=None)
@given(shapes=leading_shapes(10, max_dims=3), data=st.data())
def test_adam_step_is_the_formula(shapes, data):
    phi = data.draw(array_args(shapes[0]))
    m = data.draw(array_args(shapes[1]))
    s = data.draw(array_args(shapes[2], nonneg=True))
    g = data.draw(array_args(shapes[3]))
    g2 = data.draw(array_args(shapes[4], nonneg=True))
    t = data.draw(st.one_of(
        st.integers(1, 2 ** 63 - 1),
        operand(shapes[5], np.int64, st.integers(1, 2 ** 63 - 1))))
    eta = data.draw(param(shapes[6], values(np.float64, 0.0)))
    N_g = data.draw(param(shapes[7], horizons))
    N_s = data.draw(param(shapes[8], horizons))
    eps = data.draw(param(shapes[9], values(np.float64, 0.0, 1.0)))
    T = np.result_type(phi, m, s, g, g2)

    with quiet():
        phi1, m1, s1 = sgdprob.adam_step(phi, m, s, g, g2, t, eta=eta,
                                         N_g=N_g, N_s=N_s, eps=eps)
    assert phi1.dtype == m1.dtype == s1.dtype == T

    tt = ld(t)                  # exact: long double holds 64 bits
    ref_m, e_m = mix(ld(m), ld(g), np.minimum(tt, ld(N_g)))
    ref_s, e_s = mix(ld(s), ld(g2), np.minimum(tt, ld(N_s)))
    num = ld(eta) * ref_m
    e_num = np.abs(ld(eta)) * e_m + UU * np.abs(num)
    q, e_q, ok = step(num, e_num, ref_s, e_s, ld(eps))
    ref_phi = ld(phi) - q
    e_phi = e_q + UU * (np.abs(ld(phi)) + np.abs(q) + e_q)
    assert_within(m1, ref_m, stored(e_m, ref_m, T), True)
    assert_within(s1, ref_s, stored(e_s, ref_s, T), True)
    assert_within(phi1, ref_phi, stored(e_phi, ref_phi, T), ok)

    in_place_matches(sgdprob.adam_step, (phi, m, s), (g, g2, t),
                     dict(eta=eta, N_g=N_g, N_s=N_s, eps=eps),
                     (phi1, m1, s1), data)
