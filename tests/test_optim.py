"""rmsprop_step and adam_step against the plain NumPy formulas.

References are evaluated in long double. The kernels work in double and
round each result once to the data type; a formula of k operations errs
by at most about k u times the sum of the magnitudes of its terms
(u = 2**-53), so each bound is u_T |result| for the final rounding plus
a few u times those magnitudes, with the count written next to it.
"""
import numpy as np
import pytest

import sgdprob

DTYPES = [np.float32, np.float64]
U64 = 2.0 ** -53
U_REF = float(np.finfo(np.longdouble).eps) / 2


def unit(dtype):
    return float(np.finfo(dtype).eps) / 2


def ld(a):
    return np.asarray(a).astype(np.longdouble)


def assert_within(got, ref, bound):
    err = np.abs(ld(got) - ref)
    assert np.all(err <= bound), f"worst error / bound {np.max(err / bound)}"


def rmsprop_ref(phi, s, g, g2, eta, N, eps):
    phi, s, g, g2, eta, N, eps = map(ld, (phi, s, g, g2, eta, N, eps))
    s1 = (1 - 1 / N) * s + g2 / N
    step = eta * g / (np.sqrt(s1) + eps)
    # s1: 4 operations on two terms; step: 4 more, and s1's relative
    # error halved by the square root; phi: one subtraction
    u = U64 + U_REF
    s_bound = 4 * u * (np.abs((1 - 1 / N) * s) + np.abs(g2 / N))
    step_bound = (4 * u + s_bound / (2 * np.abs(s1))) * np.abs(step)
    phi1 = phi - step
    return phi1, s1, 2 * u * np.abs(phi1) + step_bound, s_bound


@pytest.mark.parametrize("dtype", DTYPES)
def test_rmsprop_matches_formula(rng, dtype):
    phi = rng.normal(size=(3, 4)).astype(dtype)
    s = rng.uniform(0.1, 2.0, size=(3, 4)).astype(dtype)
    g = rng.normal(size=(3, 4)).astype(dtype)
    g2 = (g.astype(np.float64) ** 2 + 0.5).astype(dtype)
    eta = np.array([[0.1], [0.01], [1.0]])
    N = np.array([1.0, 3.0, 100.0, np.inf])
    phi1, s1 = sgdprob.rmsprop_step(phi, s, g, g2, eta=eta, N=N)
    assert phi1.dtype == s1.dtype == dtype
    ref_phi, ref_s, b_phi, b_s = rmsprop_ref(phi, s, g, g2, eta, N, 1e-8)
    assert_within(phi1, ref_phi, b_phi + unit(dtype) * np.abs(ref_phi))
    assert_within(s1, ref_s, b_s + unit(dtype) * np.abs(ref_s))
    # N = 1 takes g2 as it is; N = inf keeps s
    np.testing.assert_array_equal(s1[:, 0], g2[:, 0])
    np.testing.assert_array_equal(s1[:, 3], s[:, 3])


def test_rmsprop_in_place_over_steps(rng):
    phi = np.zeros(5, np.float32)
    s = np.zeros(5, np.float32)
    u32 = unit(np.float32)
    for _ in range(3):
        g = rng.normal(size=5).astype(np.float32)
        g2 = (g * g + 1).astype(np.float32)
        before = ld(phi), ld(s)                 # copies
        got = sgdprob.rmsprop_step(phi, s, g, g2, eta=0.1, N=2.0,
                                   out=(phi, s))
        assert got[0] is phi and got[1] is s
        ref_phi, ref_s, b_phi, b_s = rmsprop_ref(*before, g, g2, 0.1, 2.0,
                                                 1e-8)
        assert_within(phi, ref_phi, b_phi + u32 * np.abs(ref_phi))
        assert_within(s, ref_s, b_s + u32 * np.abs(ref_s))


def adam_ref(phi, m, s, g, g2, t, eta, N_g, N_s, eps):
    phi, m, s, g, g2, t, eta, N_g, N_s, eps = map(
        ld, (phi, m, s, g, g2, t, eta, N_g, N_s, eps))
    a = np.minimum(t, N_g)
    c = np.minimum(t, N_s)
    m1 = (1 - 1 / a) * m + g / a
    s1 = (1 - 1 / c) * s + g2 / c
    u = U64 + U_REF
    m_bound = 4 * u * (np.abs((1 - 1 / a) * m) + np.abs(g / a))
    s_bound = 4 * u * (np.abs((1 - 1 / c) * s) + np.abs(g2 / c))
    step = eta * m1 / (np.sqrt(s1) + eps)
    step_bound = (4 * u + m_bound / np.abs(m1)
                  + s_bound / (2 * np.abs(s1))) * np.abs(step)
    phi1 = phi - step
    return (phi1, m1, s1), (2 * u * np.abs(phi1) + step_bound, m_bound,
                            s_bound)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_matches_formula(rng, dtype):
    shape = (4, 3)
    phi, m, g = (rng.normal(size=shape).astype(dtype) for _ in range(3))
    s = rng.uniform(0.1, 2.0, size=shape).astype(dtype)
    g2 = (g.astype(np.float64) ** 2 + 0.5).astype(dtype)
    t = np.array([[1], [2], [7], [5000]])
    N_g = np.array([10.0, 3.0, np.inf])
    got = sgdprob.adam_step(phi, m, s, g, g2, t, eta=0.01, N_g=N_g,
                            N_s=1000.0)
    refs, bounds = adam_ref(phi, m, s, g, g2, t, 0.01, N_g, 1000.0, 1e-8)
    for x, ref, bound in zip(got, refs, bounds):
        assert x.dtype == dtype
        assert_within(x, ref, bound + unit(dtype) * np.abs(ref))


def test_adam_first_step_ignores_the_state():
    g, g2 = np.array([0.5, -2.0]), np.array([1.0, 4.0])
    phi, m, s = sgdprob.adam_step(np.zeros(2), np.array([np.nan, np.inf]),
                                  np.array([np.inf, np.nan]), g, g2, 1,
                                  eta=1.0, N_g=10, N_s=100, eps=0.0)
    np.testing.assert_array_equal(m, g)
    np.testing.assert_array_equal(s, g2)
    np.testing.assert_array_equal(phi, [-0.5, 1.0])


def test_adam_running_means_warm_up_to_plain_means(rng):
    # with horizons beyond t the running means are the plain means
    T = 50
    gs = rng.normal(size=(T, 3))
    phi, m, s = np.zeros(3), np.zeros(3), np.zeros(3)
    for t in range(1, T + 1):
        sgdprob.adam_step(phi, m, s, gs[t - 1], gs[t - 1] ** 2, t,
                          eta=0.0, N_g=np.inf, N_s=T, out=(phi, m, s))
    # each step adds at most 4 roundings to the running mean
    bound = 4 * T * U64 * np.abs(gs).max(axis=0)
    assert_within(m, ld(gs).mean(axis=0), bound)
    assert_within(s, (ld(gs) ** 2).mean(axis=0),
                  4 * T * U64 * (gs ** 2).max(axis=0))
    np.testing.assert_array_equal(phi, 0.0)


def test_adam_in_place_is_the_same_step(rng):
    args = [rng.normal(size=6) for _ in range(4)]
    args.insert(2, rng.uniform(0.5, 1.0, size=6))        # s > 0
    phi, m, s, g, g2 = args
    g2 = np.abs(g2)
    want = sgdprob.adam_step(phi, m, s, g, g2, 3, eta=0.1, N_g=10,
                             N_s=100)
    got = sgdprob.adam_step(phi, m, s, g, g2, 3, eta=0.1, N_g=10, N_s=100,
                            out=(phi, m, s))
    assert got[0] is phi and got[1] is m and got[2] is s
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kw,exc,name", [
    ({"N": 0.5}, ValueError, "N"), ({"N": np.nan}, ValueError, "N"),
    ({"eta": np.inf}, ValueError, "eta"), ({"eps": -1.0}, ValueError, "eps"),
    ({"eps": np.nan}, ValueError, "eps"), ({"eta": "a"}, TypeError, "eta"),
    ({"phi": 1j}, TypeError, "phi"), ({"g2": np.ones(3)}, ValueError, "g2"),
    ({"out": np.zeros(2)}, ValueError, "out")])
def test_rmsprop_bad_arguments(kw, exc, name):
    args = dict(phi=np.zeros(2), s=np.zeros(2), g=np.zeros(2),
                g2=np.zeros(2), eta=0.1, N=10.0)
    args.update(kw)
    with pytest.raises(exc, match=name):
        sgdprob.rmsprop_step(**args)


@pytest.mark.parametrize("kw,exc,name", [
    ({"t": 0}, ValueError, "t"), ({"t": 1.5}, ValueError, "t"),
    ({"N_g": 0.0}, ValueError, "N_g"), ({"N_s": np.nan}, ValueError, "N_s"),
    ({"m": "x"}, TypeError, "m"), ({"out": (np.zeros(2),) * 2},
                                   ValueError, "out")])
def test_adam_bad_arguments(kw, exc, name):
    args = dict(phi=np.zeros(2), m=np.zeros(2), s=np.zeros(2),
                g=np.zeros(2), g2=np.zeros(2), t=1, eta=0.1, N_g=10.0,
                N_s=100.0)
    args.update(kw)
    with pytest.raises(exc, match=name):
        sgdprob.adam_step(**args)


def test_raw_ufuncs_flag_invalid_parameters():
    with np.errstate(invalid="raise"), pytest.raises(FloatingPointError):
        sgdprob.gufuncs.rmsprop_step(0.0, 0.0, 0.0, 0.0, 0.1, 0.5, 0.0)
    with np.errstate(invalid="ignore"):
        out = sgdprob.gufuncs.adam_step(0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.1,
                                        10.0, 10.0, 0.0)
    assert np.isnan(out).all()
