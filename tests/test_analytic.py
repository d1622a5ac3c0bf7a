"""Closed forms: against exact decimal arithmetic, and the kernels against
the closed forms."""
import decimal

import numpy as np
import pytest

import sgdprob
from sgdprob import analytic
from reference import ROUNDING_UNITS, U64


def decimal_power(N, t, digits=60):
    """(1 - 1/N)^t to `digits` significant digits, from exact decimals."""
    with decimal.localcontext() as ctx:
        ctx.prec = digits
        r = 1 - 1 / decimal.Decimal(float(N))
        return (r.ln() * int(t)).exp() if r > 0 else decimal.Decimal(0)


@pytest.mark.parametrize("N, t", [(1.0, 1), (1.0, 5), (2.0, 3), (10.0, 7),
                                  (1e3, 1e4), (1e8, 3e8), (1e15, 1e15),
                                  (1e15, 7), (3.7, 40)])
def test_closed_forms_against_exact_decimals(N, t):
    c, y0 = -1.75, 0.5
    p = decimal_power(N, t)
    q = 1 - p
    D = decimal.Decimal
    leaky = D(float(N)) * D(c) * q + p * D(y0)
    ema = D(c) * q + p * D(y0)
    # exp/expm1/log1p are each within 1 ulp in glibc, and the argument
    # t log1p(-1/N) carries a relative error of 2 U64, which becomes an
    # absolute error of 2 U64 |t log1p(-1/N)| in the exponent: so the
    # powers are good to U64 (4 + 2 |t log1p(-1/N)|) relative.
    e = abs(t * np.log1p(-1.0 / N)) if N > 1 else 0.0
    rel = U64 * (8 + 2 * e)
    got = analytic.leaky_sum_of_constant(c, N, t, initial=y0)
    assert abs(D(float(got)) - leaky) <= D(rel) * (abs(D(float(N)) * D(c)) + abs(D(y0)))
    got = analytic.ema_of_constant(c, N, t, initial=y0)
    assert abs(D(float(got)) - ema) <= D(rel) * (abs(D(c)) + abs(D(y0)))


def test_naive_power_would_fail_for_huge_N():
    """The reason for log1p: (1 - 1/N)**t keeps only about 3 of its 16
    digits at N = t = 1e15; the closed form keeps them all."""
    N, t = 1e15, 1e15
    exact = float(decimal_power(N, t))
    naive = (1 - 1 / N) ** t
    good = float(analytic.ema_of_constant(0.0, N, t, initial=1.0))
    assert abs(good - exact) <= 8 * U64 * exact
    assert abs(naive - exact) > 1e-4 * exact


def test_t_zero_and_limits():
    assert analytic.leaky_sum_of_constant(2.0, 1.0, 0, initial=5.0) == 5.0
    assert analytic.leaky_sum_of_constant(2.0, 1.0, 3, initial=5.0) == 2.0
    assert analytic.leaky_sum_limit(-2.0, 7.0) == -14.0
    np.testing.assert_array_equal(
        analytic.warmup_mean_of_constant(3.0, [1.0, 5.0], [[1], [9]]),
        np.full((2, 2), 3.0))


@pytest.mark.parametrize("c", [1.0, -2.5, 1e-3])
@pytest.mark.parametrize("N", [1.0, 2.0, 10.0, 1e3])
def test_kernels_against_closed_forms(c, N):
    n = 3000
    t = np.arange(1, n + 1)
    x = np.full(n, c)
    y0 = 0.25
    leaky = sgdprob.leaky_sum(x, N, initial=y0)
    # kernel rounding: ROUNDING_UNITS U64 A_t with A_t <= 2 t max|y| for a
    # constant input; closed form: U64 (8 + 2 t/N) relative.
    scale = abs(N * c) + abs(y0)
    tol = ROUNDING_UNITS * U64 * 2 * t * scale + U64 * (8 + 2 * t / N) * scale
    assert np.all(np.abs(leaky - analytic.leaky_sum_of_constant(c, N, t, y0))
                  <= tol)
    mu = sgdprob.ema(x, N, initial=y0)
    tol_mu = tol / max(N, 1.0) + U64 * (8 + 2 * t / N) * (abs(c) + abs(y0))
    assert np.all(np.abs(mu - analytic.ema_of_constant(c, N, t, y0)) <= tol_mu)
    w = sgdprob.warmup_mean(x, N, initial=99.0)
    assert np.all(np.abs(w - analytic.warmup_mean_of_constant(c, N, t))
                  <= ROUNDING_UNITS * U64 * 2 * t * abs(c))


def test_limit_is_reached():
    """After t = 60 N steps the leaky sum is N c up to (1-1/N)^t N c."""
    for N in (10.0, 250.0):
        c = 1.5
        t = int(60 * N)
        y = sgdprob.leaky_sum(np.full(t, c), N)[-1]
        leftover = np.exp(t * np.log1p(-1 / N)) * N * c
        assert abs(y - analytic.leaky_sum_limit(c, N)) <= (
            leftover + ROUNDING_UNITS * U64 * 2 * t * N * c)


def test_leaky_sum_is_N_times_ema(rng):
    x = rng.normal(size=(4, 500))
    N = np.array([1.0, 3.0, 50.0, 800.0])
    mu0 = rng.normal(size=4)
    y = sgdprob.leaky_sum(x, N, initial=N * mu0)
    Ny = analytic.leaky_sum_from_ema(sgdprob.ema(x, N, initial=mu0),
                                     N[:, None])
    # two kernels each within ROUNDING_UNITS U64 A_t of exact, with
    # A_t <= sum of |x| + 2 t max |y| for these inputs
    t = np.arange(1, 501)
    bound = 2 * ROUNDING_UNITS * U64 * 2 * t * np.abs(y).max(axis=1,
                                                              keepdims=True)
    assert np.all(np.abs(y - Ny) <= bound + U64 * np.abs(y))


@pytest.mark.parametrize("func, args", [
    (analytic.leaky_sum_of_constant, (1.0, 0.5, 3)),
    (analytic.ema_of_constant, (1.0, np.inf, 3)),
    (analytic.leaky_sum_limit, (1.0, np.nan)),
    (analytic.leaky_sum_from_ema, ([1.0], -1.0)),
    (analytic.warmup_mean_of_constant, (1.0, 0.0, 2)),
])
def test_bad_N(func, args):
    with pytest.raises(ValueError, match=r"\bN\b"):
        func(*args)


def test_bad_t():
    with pytest.raises(ValueError, match=r"\bt\b"):
        analytic.ema_of_constant(1.0, 3.0, -1)
    with pytest.raises(ValueError, match=r"\bt\b"):
        analytic.warmup_mean_of_constant(1.0, 3.0, 0)
