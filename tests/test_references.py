"""The kernels against the libraries a user would otherwise reach for:
scipy.signal.lfilter (a first-order IIR filter is the same recurrence) and
pandas' exponentially weighted mean."""
import numpy as np
import pytest

import sgdprob
from reference import running, tolerance

signal = pytest.importorskip("scipy.signal")
pd = pytest.importorskip("pandas")


def lfilter_running(x, a, b, y0, axis=-1):
    """y_t = a y_{t-1} + b x_t from y_0 as a first-order IIR filter: the
    filter state zi is what y_0 contributes to the first output, a y_0."""
    x = np.moveaxis(x, axis, -1)
    zi = np.asarray(a * y0, dtype=float)[..., None] * np.ones(x.shape[:-1] + (1,))
    y, _ = signal.lfilter([b], [1.0, -a], x, axis=-1, zi=zi)
    return np.moveaxis(y, -1, axis)


def within(y, ref, kind, x, N, y0, axis=-1):
    """Both sides against the plain loop's rounding bound, doubled."""
    xs = np.moveaxis(np.asarray(x, float), axis, -1).reshape(-1, x.shape[axis])
    ys = np.moveaxis(y, axis, -1).reshape(xs.shape)
    rs = np.moveaxis(ref, axis, -1).reshape(xs.shape)
    for xi, yi, ri in zip(xs, ys, rs):
        exact, A = running(kind, xi, N, y0)
        tol = 2 * tolerance(exact, A, yi.dtype)
        assert np.all(np.abs(yi - ri) <= tol)


@pytest.mark.parametrize("N", [1.0, 4.0, 300.0])
@pytest.mark.parametrize("axis", [0, 1])
def test_leaky_sum_and_ema_match_lfilter(N, axis, rng):
    x = rng.normal(loc=0.5, size=(400, 7))
    a = 1.0 - 1.0 / N
    y0 = 0.3
    within(sgdprob.leaky_sum(x, N, axis=axis, initial=y0),
           lfilter_running(x, a, 1.0, y0, axis), "leaky_sum", x, N, y0, axis)
    within(sgdprob.ema(x, N, axis=axis, initial=y0),
           lfilter_running(x, a, 1.0 / N, y0, axis), "ema", x, N, y0, axis)


@pytest.mark.parametrize("N", [1.0, 2.0, 20.0, 1000.0])
def test_ema_matches_pandas_ewm(N, rng):
    """pandas' ewm(alpha=1/N, adjust=False) starts at mu_1 = x_1 and then
    runs the EMA update: our ema on x[1:] started from x[0]."""
    x = rng.normal(size=2000)
    ours = sgdprob.ema(x[1:], N, initial=x[0])
    theirs = pd.Series(x).ewm(alpha=1.0 / N, adjust=False).mean().to_numpy()
    within(ours, theirs[1:], "ema", x[1:], N, x[0])


@pytest.mark.parametrize("N", [2.0, 20.0, 1000.0])
def test_bias_corrected_ema_matches_pandas_adjust(N, rng):
    """ewm(adjust=True) is the EMA from 0 divided by the weight it has
    collected, 1 - (1 - 1/N)^t: the bias correction used by Adam."""
    x = rng.normal(loc=2.0, size=3000)
    t = np.arange(1, x.size + 1)
    corrected = sgdprob.ema(x, N) / -np.expm1(t * np.log1p(-1.0 / N))
    theirs = pd.Series(x).ewm(alpha=1.0 / N, adjust=True).mean().to_numpy()
    # pandas updates the weighted sum and the total weight recursively,
    # at most 3 roundings a step each, so each is within 3 t U64 relative
    # and their ratio within 6 t U64 (+1). Ours: the kernel's bound
    # ROUNDING_UNITS U64 A_t relative to |mu_t|, plus 8 U64 for expm1 and
    # the division. 50 t U64 (|mu_t| + A_t) / |mu_t| covers both sides.
    exact, A = running("ema", x, N)
    rel = (np.abs(exact) + A) / np.abs(exact).clip(1e-300)
    np.testing.assert_allclose(corrected, theirs, rtol=0,
                               atol=np.max(50 * t * 2.0**-53 * rel
                                           * np.abs(theirs)))


def test_warmup_mean_is_pandas_expanding_then_ewm(rng):
    """With N = inf the warm-up mean is the expanding mean."""
    x = rng.normal(size=1500)
    ours = sgdprob.warmup_mean(x, np.inf)
    theirs = pd.Series(x).expanding().mean().to_numpy()
    exact, A = running("warmup_mean", x, np.inf)
    assert np.all(np.abs(ours - theirs) <= 2 * tolerance(exact, A, np.float64)
                  + 4 * 2.0**-53 * np.arange(1, 1501) * np.abs(x).max()
                  / np.arange(1, 1501))
