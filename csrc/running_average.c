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
 * below for float and double. Which one runs depends on the layout:
 *   - series along their own contiguous or strided axis go one after the
 *     other (ra_each), each by a block scheme that keeps only one
 *     multiply-add per block on the dependency chain (ra_recur, and its
 *     SSE2 form for contiguous data);
 *   - series side by side, the series index the faster one (down the
 *     rows of a C-ordered matrix), all take step t before any takes step
 *     t + 1 (ra_lanes, ra_rows), so memory is swept in order;
 *   - fewer than RA_FEW such series, too few to keep that busy, take
 *     RA_CHUNK steps each in turn by the block scheme (ra_few).
 * Results differ from a plain loop by rounding only.
 */
#include "sgdprob.h"

#include <fenv.h>
#include <math.h>
#include <stdlib.h>

#include <numpy/npy_math.h>

/* SSE2 is part of every x86-64 processor, so using it keeps the module
 * portable; elsewhere the plain C loops run. */
#if defined(__SSE2__) || defined(_M_X64)
#define RA_SSE2 1
#include <emmintrin.h>
#else
#define RA_SSE2 0
#endif

/* Steps advanced per dependency-chain link in one long series (8 was the
 * fastest of 4, 8, 16 and 32 on an AMD Zen 4). */
#define RA_BLOCK 8
/* The same for the warm-up steps of warmup_mean (even, for SSE2). */
#define RA_WARM_BLOCK 16
/* Warm-up reciprocals computed once for all the series of one call. */
#define RA_RECIP 1024
/* Series advanced side by side, per group, when the series axis is the
 * inner one and the series do not all share N (ra_lanes): a row of 1024
 * doubles is 8 KiB, so a C-ordered matrix of up to 1024 columns is still
 * read and written in one sequential sweep. */
#define RA_LANES 1024
/* Below RA_FEW series side by side, each in turn advances RA_CHUNK steps
 * (ra_few) rather than all of them one step at a time (ra_lanes); both
 * numbers measured best on an AMD Zen 4 for 2 to 48 series. */
#define RA_FEW 8
#define RA_CHUNK 64
/* Size of a transparent huge page on x86-64 and most Linux systems. */
#define RA_HUGE_PAGE ((npy_uintp)1 << 21)

enum ra_kind { LEAKY_SUM, EMA, WARMUP_MEAN };

/* The per-series coefficients ra_lanes keeps for a group of series. */
typedef struct {
    double a[RA_LANES];         /* decays */
    double b[RA_LANES];         /* input weights */
    double state[RA_LANES];     /* running states */
    double t0[RA_LANES];        /* first step numbers, start + 1 */
    npy_intp warm[RA_LANES];    /* warm-up steps */
} ra_lane_state;

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
    if (kind == WARMUP_MEAN && start == 0) {
        s.state = 0.0;      /* y_1 = x_1 whatever initial is, even NaN */
    }
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

/* ra_setup for series i of a loop, whose parameters are at byte strides
 * sN, sinit and sstart from pN, pinit and pstart (NULL: start = 0). */
static ra_series
ra_setup_at(enum ra_kind kind, npy_intp i, npy_intp n,
            const char *pN, npy_intp sN, const char *pinit, npy_intp sinit,
            const char *pstart, npy_intp sstart)
{
    npy_int64 start = pstart ? *(const npy_int64 *)(pstart + i * sstart)
                             : 0;

    return ra_setup(kind, *(const double *)(pN + i * sN),
                    *(const double *)(pinit + i * sinit), start, n);
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

/* r[k] = 1 / (t0 + k + 1), k = 0 .. len - 1 */
static inline void
ra_reciprocals(double t0, int len, double *r)
{
    for (int k = 0; k < len; k++) {
        r[k] = 1.0 / (t0 + (double)(k + 1));
    }
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

/*
 * The block schemes redo a block step by step when its fast form is not
 * finite (see ra_plain). The fast form may have raised the overflow or
 * invalid flag where the plain loop does not, and NumPy would report
 * that as a warning; so each function running blocks notes the two
 * flags when it starts (ra_flags_note), and a redo puts them back as
 * noted before the plain loop raises what it raises (ra_flags_redo) and
 * notes them again after it. A block that ends finite raises neither
 * flag in either form. Thread-local: the loops run on any thread.
 */
static _Thread_local fexcept_t ra_flags;

static void
ra_flags_note(void)
{
    fegetexceptflag(&ra_flags, FE_OVERFLOW | FE_INVALID);
}

static void
ra_flags_redo(void)
{
    fesetexceptflag(&ra_flags, FE_OVERFLOW | FE_INVALID);
}

/*
 * Fault in a freshly allocated output the cheap way round before the
 * loop writes it. Linux backs a large NumPy array with 2 MiB huge pages
 * (NumPy asks for them) and clears each page when it is first written,
 * from the far end of the page towards the byte written (to leave that
 * byte in cache). Written in order from its first byte, a page is thus
 * cleared backwards, which measured twice as slow as forwards: on a
 * 10^7-value float64 output the page faults alone took 8 ms, against
 * 4 ms when each page is first written at its last byte, as here. Each
 * touch writes a byte of the output back unchanged, so it is harmless to
 * an output that is already in memory (or is x itself); a few bytes per
 * 2 MiB cost nothing.
 * [lo, lo + nbytes) must be all output: no gaps between elements.
 */
static void
ra_first_touch(char *lo,            /* lowest byte of the output */
               npy_intp nbytes)     /* size of the output, bytes */
{
    npy_uintp begin = (npy_uintp)lo, end = begin + (npy_uintp)nbytes;

    if (nbytes < (npy_intp)RA_HUGE_PAGE) {
        return;
    }
    while (begin < end) {
        npy_uintp next = (begin | (RA_HUGE_PAGE - 1)) + 1;
        volatile char *last = lo + ((next < end ? next : end) - 1
                                    - (npy_uintp)lo);

        *last = *last;
        begin = next;
    }
}

/*
 * The lowest byte and the size of an output of m series of n elements of
 * the given size, at byte strides sm between series and sn along them,
 * if its elements fill that span without gaps; otherwise size 0.
 */
static npy_intp
ra_dense_span(char *y, npy_intp m, npy_intp sm, npy_intp n, npy_intp sn,
              npy_intp itemsize, char **lo)
{
    npy_intp am = sm < 0 ? -sm : sm, an = sn < 0 ? -sn : sn;
    int dense = (an == itemsize && (m == 1 || am == n * itemsize))
                || (am == itemsize && (n == 1 || an == m * itemsize));

    if (!dense || m == 0 || n == 0) {
        return 0;
    }
    *lo = y + (sm < 0 ? (m - 1) * sm : 0) + (sn < 0 ? (n - 1) * sn : 0);
    return m * n * itemsize;
}

/*
 * Whether m series of n elements at x (strides sx between series, cx
 * along them) share a byte with m series at y (sy, cy) laid out
 * differently. The very same layout is safe: each step reads x_t before
 * it writes y_t in its place. NumPy copies an input that overlaps an
 * output unless the two are the very same array, which it takes for an
 * elementwise operand; with axes= the time axis of that array can still
 * differ between input and output, and a step would then overwrite
 * inputs of other series or later steps before reading them.
 */
static int
ra_overlap(const char *x, npy_intp sx, npy_intp cx,
           const char *y, npy_intp sy, npy_intp cy,
           npy_intp m, npy_intp n, npy_intp itemsize)
{
    const char *xlo = x, *xhi = x + itemsize;
    const char *ylo = y, *yhi = y + itemsize;

    if (m == 0 || n == 0 || (x == y && (sx == sy || m == 1)
                             && (cx == cy || n == 1))) {
        return 0;
    }
    xlo += (sx < 0 ? (m - 1) * sx : 0) + (cx < 0 ? (n - 1) * cx : 0);
    xhi += (sx > 0 ? (m - 1) * sx : 0) + (cx > 0 ? (n - 1) * cx : 0);
    ylo += (sy < 0 ? (m - 1) * sy : 0) + (cy < 0 ? (n - 1) * cy : 0);
    yhi += (sy > 0 ? (m - 1) * sy : 0) + (cy > 0 ? (n - 1) * cy : 0);
    return xlo < yhi && ylo < xhi;
}

#define T float
#define RA_FLOAT 1
#define SFX _f
#include "running_average_impl.h"
#undef T
#undef RA_FLOAT
#undef SFX

#define T double
#define RA_FLOAT 0
#define SFX _d
#include "running_average_impl.h"
#undef T
#undef RA_FLOAT
#undef SFX
