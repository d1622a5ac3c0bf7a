/*
 * running_average.c -- running averages of a series, as gufunc loops.
 *
 *   leaky_sum     (n),(),()->(n)     x, N, initial -> y
 *       y_0 = initial,  y_t = (1 - 1/N) y_{t-1} + x_t
 *   ema           (n),(),()->(n)     x, N, initial -> mu
 *       mu_0 = initial,  mu_t = (1 - 1/N) mu_{t-1} + x_t / N
 *   warmup_mean   (n),(),(),()->(n)  x, N, initial, start -> y
 *       y_t = (1 - 1/m_t) y_{t-1} + x_t / m_t,  m_t = min(t, N),
 *       t = start + 1, ..., start + n, y_start = initial; at t = 1 the
 *       step is y_1 = x_1, so initial is ignored when start = 0.
 *
 * All three are the first-order recurrence y_t = a y_{t-1} + b x_t with
 * a = 1 - 1/N and b = 1 (leaky_sum) or b = 1/N (ema, warmup_mean once
 * t >= N). The state is carried in double for float32 data too.
 *
 * An invalid parameter (N < 1, N NaN, start < 0) fills that series with
 * NaN and raises the floating-point invalid flag; NumPy turns the flag
 * into a RuntimeWarning, or an error under np.errstate(invalid="raise").
 * The Python layer checks the parameters before the call and raises
 * ValueError, so only direct calls of the gufuncs meet this rule.
 *
 * The loops are written once in running_average_impl.h and instantiated
 * below for float and double.
 */
#include "sgdprob.h"

#include <fenv.h>
#include <math.h>

#include <numpy/npy_math.h>

/* Steps advanced per dependency-chain link in one long series. */
#define RA_BLOCK 8
/* Series advanced side by side when the series axis is the inner one. */
#define RA_LANES 256

enum ra_kind { LEAKY_SUM, EMA, WARMUP_MEAN };

/* One series: warm-up steps first, then y_t = a y_{t-1} + b x_t. */
typedef struct {
    int valid;          /* parameters are in range */
    double a;           /* decay 1 - 1/N */
    double b;           /* input weight: 1 or 1/N */
    double state;       /* y before the first step of this call */
    double start;       /* steps taken before this call */
    npy_intp warm;      /* leading steps with m_t = t (warmup_mean) */
} ra_series;

static ra_series
ra_setup(enum ra_kind kind,     /* which running average */
         double N,              /* horizon, >= 1, may be inf */
         double initial,        /* y before the first step */
         npy_int64 start,       /* steps already taken (warmup_mean) */
         npy_intp n)            /* steps in this call */
{
    ra_series s;

    s.valid = N >= 1.0 && start >= 0;
    if (!s.valid) {
        s.a = s.b = s.state = NPY_NAN;
        s.start = 0.0;
        s.warm = 0;
        return s;
    }
    s.a = 1.0 - 1.0 / N;
    s.b = kind == LEAKY_SUM ? 1.0 : 1.0 / N;
    s.state = initial;
    s.start = (double)start;
    s.warm = 0;
    if (kind == WARMUP_MEAN) {
        /* t < N  <=>  t <= ceil(N) - 1; and t = 1 always takes y_1 = x_1 */
        double w = ceil(N) - 1.0 - s.start;

        if (start == 0 && w < 1.0) {
            w = 1.0;
        }
        s.warm = w <= 0.0 ? 0 : (w >= (double)n ? n : (npy_intp)w);
    }
    return s;
}

/* One warm-up step of warmup_mean at step number t < N, so m_t = t. */
static inline double
ra_warm_step(double y,      /* y_{t-1} */
             double x,      /* x_t */
             double t)      /* step number, >= 1 */
{
    if (t == 1.0) {
        return x;
    }
    return (1.0 - 1.0 / t) * y + x / t;
}

/* p[k] = a^(k+1), k = 0 .. RA_BLOCK - 1 */
static inline void
ra_powers(double a, double *p)
{
    p[0] = a;
    for (int k = 1; k < RA_BLOCK; k++) {
        p[k] = p[k - 1] * a;
    }
}

static void
ra_flag_invalid(void)
{
    feraiseexcept(FE_INVALID);
}

#define T float
#define SFX _f
#include "running_average_impl.h"
#undef T
#undef SFX

#define T double
#define SFX _d
#include "running_average_impl.h"
#undef T
#undef SFX
