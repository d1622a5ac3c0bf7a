/*
 * running_average_impl.h -- the loops of running_average.c for one data
 * type. Included once per type with T (the C type of x and y), RA_FLOAT
 * (1 if T is float) and SFX (the name suffix) defined; the state is
 * double whatever T is.
 */
#define RA_CAT_(a, b) a##b
#define RA_CAT(a, b) RA_CAT_(a, b)
#define RA_FN(name) RA_CAT(name, SFX)

/* element i of a strided T array as a double, and a store into one */
#define RA_LD(p, i, s) ((double)*(const T *)((p) + (i) * (s)))
#define RA_ST(p, i, s, v) (*(T *)((p) + (i) * (s)) = (T)(v))

/*
 * The plain loops, step by step. The block schemes below use them for a
 * block whose result is not finite: their partial sums can overflow
 * where the plain loop does not (two inputs of 1e308 summed before
 * dividing), and redoing such a block plainly also makes inf and NaN
 * come out as the plain loop gives them, whatever the memory layout.
 */
static double
RA_FN(ra_plain)(npy_intp n,         /* steps */
                const char *x,      /* x_1 */
                npy_intp sx,        /* stride of x, bytes */
                char *y,            /* y_1 */
                npy_intp sy,        /* stride of y, bytes */
                double a,           /* decay */
                double b,           /* input weight */
                double state)       /* y_0 */
{
    for (npy_intp i = 0; i < n; i++) {
        state = a * state + b * RA_LD(x, i, sx);
        RA_ST(y, i, sy, state);
    }
    return state;
}

/* warmup_mean's warm-up steps t0 + 1 .. t0 + n, step by step */
static double
RA_FN(ra_warm_plain)(npy_intp n,        /* steps */
                     const char *x,     /* x_{t0+1} */
                     npy_intp sx,       /* stride of x, bytes */
                     char *y,           /* y_{t0+1} */
                     npy_intp sy,       /* stride of y, bytes */
                     double t0,         /* steps before */
                     double state)      /* y_{t0} */
{
    for (npy_intp k = 0; k < n; k++) {
        state = ra_warm_step(state, RA_LD(x, k, sx), t0 + 1.0 + (double)k);
        RA_ST(y, k, sy, state);
    }
    return state;
}

/*
 * y_t = a y_{t-1} + b x_t for t = 1 .. n from y_0 = y; returns y_n.
 *
 * A plain loop waits a multiply and an add for every step. Here each
 * block of RA_BLOCK steps first runs the recurrence from zero,
 *     z_0 = b x_0,  z_k = a z_{k-1} + b x_k,
 * which does not depend on the previous block, and then adds the carried
 * state:  y_k = z_k + a^(k+1) y.  Only that last multiply-add is on the
 * chain from block to block. The result differs from the plain loop by
 * rounding only, but the rounded powers a^(k+1) act on every block like
 * a slightly different a, so the differences build up over the horizon:
 * at most 40 u A_t, A_t the recurrence on absolute values with |y_{t-1}|
 * added in, about min(t, N) |y| (tests/reference.py).
 * x and y may be the same array (every block is read before it is
 * written).
 */
static inline double
RA_FN(ra_recur)(npy_intp n,         /* steps */
                const char *x,      /* x_1 */
                npy_intp sx,        /* stride of x, bytes */
                char *y,            /* y_1 */
                npy_intp sy,        /* stride of y, bytes */
                const double *p,    /* a^1 .. a^RA_BLOCK */
                double a,           /* decay */
                double b,           /* input weight */
                double state)       /* y_0 */
{
    npy_intp i = 0;

    ra_flags_note();
    for (; i + RA_BLOCK <= n; i += RA_BLOCK) {
        double z[RA_BLOCK];

        z[0] = b * RA_LD(x, i, sx);
        for (int k = 1; k < RA_BLOCK; k++) {
            z[k] = a * z[k - 1] + b * RA_LD(x, i + k, sx);
        }
        for (int k = 0; k < RA_BLOCK; k++) {
            z[k] += p[k] * state;
        }
        if (!npy_isfinite(z[RA_BLOCK - 1])) {
            ra_flags_redo();
            state = RA_FN(ra_plain)(RA_BLOCK, x + i * sx, sx, y + i * sy,
                                    sy, a, b, state);
            ra_flags_note();
            continue;
        }
        for (int k = 0; k < RA_BLOCK; k++) {
            RA_ST(y, i + k, sy, z[k]);
        }
        state = z[RA_BLOCK - 1];
    }
    return RA_FN(ra_plain)(n - i, x + i * sx, sx, y + i * sy, sy, a, b,
                           state);
}

#if RA_SSE2
/* two contiguous elements as doubles, and a store of two */
static inline __m128d
RA_FN(ra_load2)(const T *x)
{
#if RA_FLOAT
    return _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64((const void *)x)));
#else
    return _mm_loadu_pd(x);
#endif
}

static inline void
RA_FN(ra_store2)(T *y, __m128d v)
{
#if RA_FLOAT
    _mm_storel_epi64((void *)y, _mm_castps_si128(_mm_cvtpd_ps(v)));
#else
    _mm_storeu_pd(y, v);
#endif
}

/*
 * ra_recur on contiguous x and y, two steps per SSE2 vector. Within a
 * block the pair v = (x_k, x_{k+1}) advances z by two steps at once,
 *     (z_k, z_{k+1}) = (u_0, u_1 + a u_0) + (a, a^2) z_{k-1},  u = b v,
 * so the chain inside a block is half as long as in ra_recur, and each
 * multiply or add does two steps' work. The fix-up with a^(k+1) y is as
 * in ra_recur.
 */
static inline double
RA_FN(ra_recur_sse2)(npy_intp n,        /* steps */
                     const T *x,        /* x_1 */
                     T *y,              /* y_1 */
                     const double *p,   /* a^1 .. a^RA_BLOCK */
                     double a,          /* decay */
                     double b,          /* input weight */
                     double state)      /* y_0 */
{
    const __m128d av = _mm_set1_pd(a), bv = _mm_set1_pd(b);
    const __m128d aa = _mm_set_pd(a * a, a), zero = _mm_setzero_pd();
    __m128d sv = _mm_set1_pd(state);
    npy_intp i = 0;

    ra_flags_note();
    for (; i + RA_BLOCK <= n; i += RA_BLOCK) {
        __m128d z[RA_BLOCK / 2], prev = zero, last;

        for (int k = 0; k < RA_BLOCK / 2; k++) {
            __m128d u = _mm_mul_pd(bv, RA_FN(ra_load2)(x + i + 2 * k));
            __m128d own = _mm_add_pd(u, _mm_mul_pd(av,
                                                   _mm_unpacklo_pd(zero, u)));

            prev = _mm_add_pd(own, _mm_mul_pd(aa,
                                              _mm_unpackhi_pd(prev, prev)));
            z[k] = prev;
        }
        for (int k = 0; k < RA_BLOCK / 2; k++) {
            z[k] = _mm_add_pd(z[k], _mm_mul_pd(_mm_loadu_pd(p + 2 * k), sv));
        }
        last = _mm_unpackhi_pd(z[RA_BLOCK / 2 - 1], z[RA_BLOCK / 2 - 1]);
        if (!npy_isfinite(_mm_cvtsd_f64(last))) {
            ra_flags_redo();
            sv = _mm_set1_pd(RA_FN(ra_plain)(
                RA_BLOCK, (const char *)(x + i), sizeof(T), (char *)(y + i),
                sizeof(T), a, b, _mm_cvtsd_f64(sv)));
            ra_flags_note();
            continue;
        }
        for (int k = 0; k < RA_BLOCK / 2; k++) {
            RA_FN(ra_store2)(y + i + 2 * k, z[k]);
        }
        sv = last;
    }
    return RA_FN(ra_plain)(n - i, (const char *)(x + i), sizeof(T),
                           (char *)(y + i), sizeof(T), a, b,
                           _mm_cvtsd_f64(sv));
}

/*
 * Two series side by side, their elements adjacent at each step (two
 * neighbouring columns of a C-ordered matrix), advanced together by the
 * block scheme of ra_recur with a pair of them in each SSE2 vector.
 * state holds their y before the first step and is updated.
 */
static inline void
RA_FN(ra_recur_pair_sse2)(npy_intp n,       /* steps */
                          const char *x,    /* x of both, step 1 */
                          npy_intp sx,      /* x stride along them */
                          char *y,          /* y of both, step 1 */
                          npy_intp sy,      /* y stride along them */
                          const double *p0, /* a^1 .. of the first */
                          const double *p1, /* a^1 .. of the second */
                          const ra_series *s0,
                          const ra_series *s1,
                          double *state)    /* y_0 of both, updated */
{
    const __m128d av = _mm_set_pd(s1->a, s0->a), bv = _mm_set_pd(s1->b,
                                                                 s0->b);
    __m128d pv[RA_BLOCK], sv = _mm_loadu_pd(state);
    npy_intp i = 0;

    ra_flags_note();
    for (int k = 0; k < RA_BLOCK; k++) {
        pv[k] = _mm_set_pd(p1[k], p0[k]);
    }
    for (; i + RA_BLOCK <= n; i += RA_BLOCK) {
        __m128d z[RA_BLOCK];

        z[0] = _mm_mul_pd(bv, RA_FN(ra_load2)((const T *)(x + i * sx)));
        for (int k = 1; k < RA_BLOCK; k++) {
            __m128d v = RA_FN(ra_load2)((const T *)(x + (i + k) * sx));

            z[k] = _mm_add_pd(_mm_mul_pd(av, z[k - 1]), _mm_mul_pd(bv, v));
        }
        for (int k = 0; k < RA_BLOCK; k++) {
            z[k] = _mm_add_pd(z[k], _mm_mul_pd(pv[k], sv));
        }
        if (!npy_isfinite(_mm_cvtsd_f64(z[RA_BLOCK - 1]))
            || !npy_isfinite(_mm_cvtsd_f64(
                   _mm_unpackhi_pd(z[RA_BLOCK - 1], z[RA_BLOCK - 1])))) {
            double st[2];

            ra_flags_redo();
            _mm_storeu_pd(st, sv);
            st[0] = RA_FN(ra_plain)(RA_BLOCK, x + i * sx, sx, y + i * sy, sy,
                                    s0->a, s0->b, st[0]);
            st[1] = RA_FN(ra_plain)(RA_BLOCK, x + i * sx + sizeof(T), sx,
                                    y + i * sy + sizeof(T), sy, s1->a, s1->b,
                                    st[1]);
            sv = _mm_loadu_pd(st);
            ra_flags_note();
            continue;
        }
        for (int k = 0; k < RA_BLOCK; k++) {
            RA_FN(ra_store2)((T *)(y + (i + k) * sy), z[k]);
        }
        sv = z[RA_BLOCK - 1];
    }
    for (; i < n; i++) {
        __m128d v = RA_FN(ra_load2)((const T *)(x + i * sx));

        sv = _mm_add_pd(_mm_mul_pd(av, sv), _mm_mul_pd(bv, v));
        RA_FN(ra_store2)((T *)(y + i * sy), sv);
    }
    _mm_storeu_pd(state, sv);
}
#endif

/*
 * len <= RA_WARM_BLOCK warm-up steps of warmup_mean after step t0, from
 * y_{t0} = state, given r[k] = 1 / (t0 + k + 1); returns y_{t0+len}.
 *
 * While t < N the step is y_t = (1 - 1/t) y_{t-1} + x_t / t, and k steps
 * after t0 give, in closed form,
 *     y_{t0+k} = (t0 y_{t0} + z_k) / (t0 + k),
 *     z_k = x_{t0+1} + .. + x_{t0+k},
 * computed as (t0 r_k) y_{t0} + r_k z_k, which cannot overflow. The
 * partial sums z_k and the reciprocals r_k do not depend on y_{t0}, so
 * only one multiply-add per block is on the dependency chain, where the
 * plain loop waits for a multiply and an add at every step (and divides
 * twice per step). The result differs from the plain loop by rounding
 * only. y_{t0} must be finite when t0 = 0 (ra_setup makes it 0), since
 * it is then multiplied by 0.
 */
static inline double
RA_FN(ra_warm_block)(int len,           /* steps */
                     const char *x,     /* x_{t0+1} */
                     npy_intp sx,       /* stride of x, bytes */
                     char *y,           /* y_{t0+1} */
                     npy_intp sy,       /* stride of y, bytes */
                     double t0,         /* steps before this block */
                     const double *r,   /* 1/(t0+1) .. 1/(t0+len) */
                     double state)      /* y_{t0} */
{
    double z[RA_WARM_BLOCK], w[RA_WARM_BLOCK], sum = 0.0, last = state;

    for (int k = 0; k < len; k++) {
        sum += RA_LD(x, k, sx);
        z[k] = sum;
    }
    for (int k = 0; k < len; k++) {
        w[k] = (t0 * r[k]) * state + r[k] * z[k];
        last = w[k];
    }
    if (!npy_isfinite(last)) {
        ra_flags_redo();
        last = RA_FN(ra_warm_plain)(len, x, sx, y, sy, t0, state);
        ra_flags_note();
        return last;
    }
    for (int k = 0; k < len; k++) {
        RA_ST(y, k, sy, w[k]);
    }
    return last;
}

#if RA_SSE2
/* ra_warm_block for RA_WARM_BLOCK contiguous steps, two per SSE2
 * vector: the pair (x_k, x_{k+1}) adds (x_k, x_k + x_{k+1}) to the
 * partial sum z_{k-1}. */
static inline double
RA_FN(ra_warm_block_sse2)(const T *x,       /* x_{t0+1} */
                          T *y,             /* y_{t0+1} */
                          double t0,        /* steps before this block */
                          const double *r,  /* 1/(t0+1) .. */
                          double state)     /* y_{t0} */
{
    const __m128d tv = _mm_set1_pd(t0), sv = _mm_set1_pd(state);
    const __m128d zero = _mm_setzero_pd();
    __m128d sum = zero, w[RA_WARM_BLOCK / 2];
    double last;

    for (int k = 0; k < RA_WARM_BLOCK / 2; k++) {
        __m128d v = RA_FN(ra_load2)(x + 2 * k), rv = _mm_loadu_pd(r + 2 * k);

        sum = _mm_add_pd(_mm_add_pd(v, _mm_unpacklo_pd(zero, v)),
                         _mm_unpackhi_pd(sum, sum));
        w[k] = _mm_add_pd(_mm_mul_pd(_mm_mul_pd(tv, rv), sv),
                          _mm_mul_pd(rv, sum));
    }
    last = _mm_cvtsd_f64(_mm_unpackhi_pd(w[RA_WARM_BLOCK / 2 - 1],
                                         w[RA_WARM_BLOCK / 2 - 1]));
    if (!npy_isfinite(last)) {
        ra_flags_redo();
        last = RA_FN(ra_warm_plain)(RA_WARM_BLOCK, (const char *)x,
                                    sizeof(T), (char *)y, sizeof(T), t0,
                                    state);
        ra_flags_note();
        return last;
    }
    for (int k = 0; k < RA_WARM_BLOCK / 2; k++) {
        RA_FN(ra_store2)(y + 2 * k, w[k]);
    }
    return last;
}
#endif

/*
 * Warm-up steps t0 + 1 .. t0 + n of warmup_mean from y_{t0} = state, in
 * blocks (see ra_warm_block); returns y_{t0+n}. The first nrecip
 * reciprocals 1/(t0+1), 1/(t0+2), .. may come precomputed in recip,
 * shared by the series of one call; the others are computed here.
 */
static double
RA_FN(ra_warm)(npy_intp n,              /* steps */
               const char *x,           /* x_{t0+1} */
               npy_intp sx,             /* stride of x, bytes */
               char *y,                 /* y_{t0+1} */
               npy_intp sy,             /* stride of y, bytes */
               double t0,               /* steps taken before */
               const double *recip,     /* 1/(t0+1) .., or NULL */
               npy_intp nrecip,         /* length of recip */
               double state)            /* y_{t0} */
{
#if RA_SSE2
    int contiguous = sx == (npy_intp)sizeof(T) && sy == (npy_intp)sizeof(T);
#endif
    double r[RA_WARM_BLOCK];

    ra_flags_note();
    for (npy_intp i = 0; i < n; i += RA_WARM_BLOCK) {
        int len = n - i < RA_WARM_BLOCK ? (int)(n - i) : RA_WARM_BLOCK;
        const double *ri = r;

        if (i + len <= nrecip) {
            ri = recip + i;
        }
        else {
            ra_reciprocals(t0 + (double)i, len, r);
        }
#if RA_SSE2
        if (len == RA_WARM_BLOCK && contiguous) {
            state = RA_FN(ra_warm_block_sse2)((const T *)x + i, (T *)y + i,
                                              t0 + (double)i, ri, state);
            continue;
        }
#endif
        /* a constant length lets the compiler unroll the full blocks */
        state = len == RA_WARM_BLOCK
                ? RA_FN(ra_warm_block)(RA_WARM_BLOCK, x + i * sx, sx,
                                       y + i * sy, sy, t0 + (double)i, ri,
                                       state)
                : RA_FN(ra_warm_block)(len, x + i * sx, sx, y + i * sy, sy,
                                       t0 + (double)i, ri, state);
    }
    return state;
}

/*
 * Steps j0 .. j1 - 1 of one series (counted from 0, the first step of
 * this call) from its state before step j0: the warm-up steps among
 * them, then the constant recurrence. x and y point at step 0. Returns
 * the state after step j1 - 1.
 */
static double
RA_FN(ra_steps)(const ra_series *s,     /* coefficients, valid */
                npy_intp j0,            /* first step */
                npy_intp j1,            /* one past the last step */
                const char *x,          /* x of step 0 */
                npy_intp sx,            /* stride of x, bytes */
                char *y,                /* y of step 0 */
                npy_intp sy,            /* stride of y, bytes */
                const double *p,        /* a^1 .. a^RA_BLOCK */
                const double *recip,    /* see ra_warm, or NULL */
                npy_intp nrecip,        /* length of recip */
                double state)           /* y before step j0 */
{
    npy_intp jw = s->warm < j1 ? s->warm : j1;

    if (j0 < jw) {
        int table = j0 < nrecip;

        state = RA_FN(ra_warm)(jw - j0, x + j0 * sx, sx, y + j0 * sy, sy,
                               s->start + (double)j0,
                               table ? recip + j0 : NULL,
                               table ? nrecip - j0 : 0, state);
        j0 = jw;
    }
    if (j0 >= j1) {
        return state;
    }
    x += j0 * sx;
    y += j0 * sy;
#if RA_SSE2
    if (sx == (npy_intp)sizeof(T) && sy == (npy_intp)sizeof(T)) {
        return RA_FN(ra_recur_sse2)(j1 - j0, (const T *)x, (T *)y, p, s->a,
                                    s->b, state);
    }
#endif
    return RA_FN(ra_recur)(j1 - j0, x, sx, y, sy, p, s->a, s->b, state);
}

/* One whole series; NaN if its parameters are invalid. */
static void
RA_FN(ra_series)(npy_intp n,            /* length of the series */
                 const char *x,         /* x_1 */
                 npy_intp sx,           /* stride of x, bytes */
                 char *y,               /* y_1 */
                 npy_intp sy,           /* stride of y, bytes */
                 const ra_series *s,    /* its coefficients and state */
                 const double *recip,   /* see ra_warm, or NULL */
                 npy_intp nrecip)       /* length of recip */
{
    double p[RA_BLOCK];

    if (!s->valid) {
        for (npy_intp i = 0; i < n; i++) {
            RA_ST(y, i, sy, NPY_NAN);
        }
        ra_flag_invalid();
        return;
    }
    ra_powers(s->a, p);
    RA_FN(ra_steps)(s, 0, n, x, sx, y, sy, p, recip, nrecip, s->state);
}

/*
 * m < RA_FEW series of length n side by side, the series index the
 * faster one: too few to keep ra_rows busy, where each step waits for
 * the series' previous one. Each series in turn advances RA_CHUNK steps
 * by the block scheme of ra_recur, so that a chunk of rows is read from
 * memory once and then from cache.
 */
static void
RA_FN(ra_few)(enum ra_kind kind,        /* which running average */
              npy_intp m,               /* number of series, < RA_FEW */
              npy_intp n,               /* length of each series */
              const char *x,            /* x[0, 0] */
              npy_intp sxm,             /* x stride between series */
              npy_intp sxn,             /* x stride along a series */
              char *y,                  /* y[0, 0] */
              npy_intp sym,             /* y stride between series */
              npy_intp syn,             /* y stride along a series */
              const char *pN,           /* N of series 0 */
              npy_intp sN,              /* stride of N */
              const char *pinit,        /* initial of series 0 */
              npy_intp sinit,           /* stride of initial */
              const char *pstart,       /* start of series 0, or NULL */
              npy_intp sstart)          /* stride of start */
{
    ra_series s[RA_FEW];
    double p[RA_FEW][RA_BLOCK], state[RA_FEW];
#if RA_SSE2
    int pairs = sxm == (npy_intp)sizeof(T) && sym == (npy_intp)sizeof(T);
#endif

    for (npy_intp k = 0; k < m; k++) {
        s[k] = ra_setup_at(kind, k, n, pN, sN, pinit, sinit, pstart, sstart);
        state[k] = s[k].state;
        if (s[k].valid) {
            ra_powers(s[k].a, p[k]);
        }
        else {
            RA_FN(ra_series)(n, x + k * sxm, sxn, y + k * sym, syn, &s[k],
                             NULL, 0);
        }
    }
    for (npy_intp j0 = 0; j0 < n; j0 += RA_CHUNK) {
        npy_intp j1 = n - j0 < RA_CHUNK ? n : j0 + RA_CHUNK;
        npy_intp k = 0;

#if RA_SSE2
        /* pairs of neighbouring series, once both are past warming up */
        for (; pairs && k + 1 < m; k += 2) {
            npy_intp jp = s[k].warm > s[k + 1].warm ? s[k].warm
                                                    : s[k + 1].warm;

            if (!s[k].valid || !s[k + 1].valid || jp >= j1) {
                break;
            }
            for (npy_intp i = k; i < k + 2 && j0 < jp; i++) {
                state[i] = RA_FN(ra_steps)(&s[i], j0, jp, x + i * sxm, sxn,
                                           y + i * sym, syn, p[i], NULL, 0,
                                           state[i]);
            }
            jp = jp > j0 ? jp : j0;
            RA_FN(ra_recur_pair_sse2)(j1 - jp, x + k * sxm + jp * sxn, sxn,
                                      y + k * sym + jp * syn, syn,
                                      p[k], p[k + 1], &s[k], &s[k + 1],
                                      state + k);
        }
#endif
        for (; k < m; k++) {
            if (s[k].valid) {
                state[k] = RA_FN(ra_steps)(&s[k], j0, j1, x + k * sxm, sxn,
                                           y + k * sym, syn, p[k], NULL, 0,
                                           state[k]);
            }
        }
    }
}

/*
 * L series of length n advanced side by side with the same coefficients
 * (the same N, and for warmup_mean the same start): for each step t,
 * every series takes its step, y = c_t y + w_t x, with c_t and w_t the
 * warm-up coefficients 1 - 1/t and 1/t for the first warm steps and then
 * a and b. state holds each series' y before the first step.
 */
static void
RA_FN(ra_rows)(npy_intp L,              /* number of series */
               npy_intp n,              /* length of each series */
               const char *x,           /* x[0, 0] */
               npy_intp sxm,            /* x stride between series */
               npy_intp sxn,            /* x stride along a series */
               char *y,                 /* y[0, 0] */
               npy_intp sym,            /* y stride between series */
               npy_intp syn,            /* y stride along a series */
               double *state,           /* y_0 of each series, updated */
               const ra_series *s)      /* the shared coefficients */
{
    int contiguous = sxm == (npy_intp)sizeof(T)
                     && sym == (npy_intp)sizeof(T);

    for (npy_intp j = 0; j < n; j++) {
        const char *xr = x + j * sxn;
        char *yr = y + j * syn;
        double r = j < s->warm ? 1.0 / (s->start + 1.0 + (double)j) : 0.0;
        double c = j < s->warm ? 1.0 - r : s->a;
        double w = j < s->warm ? r : s->b;

        if (contiguous) {
            const T *xc = (const T *)xr;
            T *yc = (T *)yr;

            for (npy_intp k = 0; k < L; k++) {
                state[k] = c * state[k] + w * (double)xc[k];
                yc[k] = (T)state[k];
            }
        }
        else {
            for (npy_intp k = 0; k < L; k++) {
                state[k] = c * state[k] + w * RA_LD(xr, k, sxm);
                RA_ST(yr, k, sym, state[k]);
            }
        }
    }
}

/*
 * m series of length n, one after the other. When they all have the same
 * N and start, the reciprocals of their warm-up steps are computed once
 * for all (they cost a division per step).
 */
static void
RA_FN(ra_each)(enum ra_kind kind,       /* which running average */
               npy_intp m,              /* number of series */
               npy_intp n,              /* length of each series */
               const char *x,           /* x[0, 0] */
               npy_intp sxm,            /* x stride between series */
               npy_intp sxn,            /* x stride along a series */
               char *y,                 /* y[0, 0] */
               npy_intp sym,            /* y stride between series */
               npy_intp syn,            /* y stride along a series */
               const char *pN,          /* N of series 0 */
               npy_intp sN,             /* stride of N */
               const char *pinit,       /* initial of series 0 */
               npy_intp sinit,          /* stride of initial */
               const char *pstart,      /* start of series 0, or NULL */
               npy_intp sstart)         /* stride of start */
{
    double *recip = NULL;
    npy_intp nrecip = 0;

    if (kind == WARMUP_MEAN && m > 1 && sN == 0 && sstart == 0) {
        ra_series s0 = ra_setup_at(kind, 0, n, pN, sN, pinit, sinit,
                                   pstart, sstart);

        nrecip = s0.warm < RA_RECIP ? s0.warm : RA_RECIP;
        recip = PyMem_RawMalloc((nrecip > 0 ? nrecip : 1) * sizeof(double));
        if (recip == NULL) {
            nrecip = 0;     /* each block computes its own */
        }
        else {
            ra_reciprocals(s0.start, (int)nrecip, recip);
        }
    }
    for (npy_intp i = 0; i < m; i++) {
        ra_series s = ra_setup_at(kind, i, n, pN, sN, pinit, sinit,
                                  pstart, sstart);

        RA_FN(ra_series)(n, x + i * sxm, sxn, y + i * sym, syn, &s,
                         recip, nrecip);
    }
    PyMem_RawFree(recip);
}

/*
 * m series of length n advanced side by side: for each step t, every
 * series takes its step. This is the order of memory when the series
 * index is the faster one (a running average down the rows of a
 * C-ordered matrix), where one series at a time would touch a new cache
 * line at every step. When all m series share N and start, ra_rows runs
 * them all at once, so that each row of the matrix is one sequential
 * sweep; otherwise they go RA_LANES at a time, a group whose series
 * happen to share their coefficients to ra_rows, others keeping each
 * series' own.
 */
static void
RA_FN(ra_lanes)(enum ra_kind kind,      /* which running average */
                npy_intp m,             /* number of series */
                npy_intp n,             /* length of each series */
                const char *x,          /* x[0, 0] */
                npy_intp sxm,           /* x stride between series */
                npy_intp sxn,           /* x stride along a series */
                char *y,                /* y[0, 0] */
                npy_intp sym,           /* y stride between series */
                npy_intp syn,           /* y stride along a series */
                const char *pN,         /* N of series 0 */
                npy_intp sN,            /* stride of N */
                const char *pinit,      /* initial of series 0 */
                npy_intp sinit,         /* stride of initial */
                const char *pstart,     /* start of series 0, or NULL */
                npy_intp sstart)        /* stride of start */
{
    /* on the heap: 40 KiB would not fit every thread's stack */
    ra_lane_state *ls = PyMem_RawMalloc(sizeof(ra_lane_state));
    double *a, *b, *state, *t0;
    npy_intp *warm;
    int contiguous = sxm == (npy_intp)sizeof(T)
                     && sym == (npy_intp)sizeof(T);

    if (ls == NULL) {
        RA_FN(ra_each)(kind, m, n, x, sxm, sxn, y, sym, syn,
                       pN, sN, pinit, sinit, pstart, sstart);
        return;
    }
    a = ls->a;
    b = ls->b;
    state = ls->state;
    t0 = ls->t0;
    warm = ls->warm;

    if (m > RA_LANES && sN == 0 && sstart == 0) {
        ra_series s0 = ra_setup_at(kind, 0, n, pN, sN, pinit, sinit,
                                   pstart, sstart);
        double *all = s0.valid ? PyMem_RawMalloc(m * sizeof(double))
                               : NULL;

        if (all != NULL) {
            for (npy_intp k = 0; k < m; k++) {
                all[k] = ra_setup_at(kind, k, n, pN, sN, pinit, sinit,
                                     pstart, sstart).state;
            }
            RA_FN(ra_rows)(m, n, x, sxm, sxn, y, sym, syn, all, &s0);
            PyMem_RawFree(all);
            PyMem_RawFree(ls);
            return;
        }
    }
    for (npy_intp lo = 0; lo < m; lo += RA_LANES) {
        npy_intp L = m - lo < RA_LANES ? m - lo : RA_LANES;
        npy_intp wmax = 0;
        const char *xb = x + lo * sxm;
        char *yb = y + lo * sym;
        ra_series s0 = ra_setup_at(kind, lo, n, pN, sN, pinit, sinit,
                                   pstart, sstart);
        int shared = 1;

        for (npy_intp k = 0; k < L; k++) {
            ra_series s = ra_setup_at(kind, lo + k, n, pN, sN, pinit, sinit,
                                      pstart, sstart);

            if (!s.valid) {
                ra_flag_invalid();
            }
            shared = shared && s.valid && s.a == s0.a && s.b == s0.b
                     && s.start == s0.start && s.warm == s0.warm;
            a[k] = s.a;
            b[k] = s.b;
            state[k] = s.state;
            t0[k] = s.start + 1.0;
            warm[k] = s.warm;
            wmax = s.warm > wmax ? s.warm : wmax;
        }
        if (shared) {
            RA_FN(ra_rows)(L, n, xb, sxm, sxn, yb, sym, syn, state, &s0);
            continue;
        }

        /* warm-up rows: each series on its own schedule */
        for (npy_intp j = 0; j < wmax; j++) {
            for (npy_intp k = 0; k < L; k++) {
                double xv = RA_LD(xb + j * sxn, k, sxm);

                state[k] = j < warm[k]
                           ? ra_warm_step(state[k], xv, t0[k] + j)
                           : a[k] * state[k] + b[k] * xv;
                RA_ST(yb + j * syn, k, sym, state[k]);
            }
        }

        /* the rest: the same coefficients at every step */
        for (npy_intp j = wmax; j < n; j++) {
            const char *xr = xb + j * sxn;
            char *yr = yb + j * syn;

            if (contiguous) {
                const T *xc = (const T *)xr;
                T *yc = (T *)yr;

                for (npy_intp k = 0; k < L; k++) {
                    state[k] = a[k] * state[k] + b[k] * (double)xc[k];
                    yc[k] = (T)state[k];
                }
            }
            else {
                for (npy_intp k = 0; k < L; k++) {
                    state[k] = a[k] * state[k] + b[k] * RA_LD(xr, k, sxm);
                    RA_ST(yr, k, sym, state[k]);
                }
            }
        }
    }
    PyMem_RawFree(ls);
}


/*
 * The inner loop NumPy calls. args are x, N, initial, [start,] y; steps
 * holds their outer strides, then the core strides of x and y.
 */
static void
RA_FN(ra_loop)(enum ra_kind kind, char **args, npy_intp const *dimensions,
               npy_intp const *steps)
{
    int w = kind == WARMUP_MEAN;
    npy_intp m = dimensions[0], n = dimensions[1];
    const char *x = args[0], *pN = args[1], *pinit = args[2];
    const char *pstart = w ? args[3] : NULL;
    char *y = args[3 + w];
    npy_intp sx = steps[0], sN = steps[1], sinit = steps[2];
    npy_intp sstart = w ? steps[3] : 0, sy = steps[3 + w];
    npy_intp cx = steps[4 + w], cy = steps[5 + w];
    char *lo = NULL;
    npy_intp span = ra_dense_span(y, m, sy, n, cy, sizeof(T), &lo);
    T *copy = NULL;

    if (ra_overlap(x, sx, cx, y, sy, cy, m, n, sizeof(T))) {
        /* read x from a copy, series after series */
        copy = (npy_uintp)m <= (npy_uintp)NPY_MAX_INTP / sizeof(T) / n
               ? PyMem_RawMalloc((size_t)(m * n) * sizeof(T)) : NULL;
        if (copy == NULL) {
            for (npy_intp i = 0; i < m; i++) {
                for (npy_intp t = 0; t < n; t++) {
                    *(T *)(y + i * sy + t * cy) = (T)NPY_NAN;
                }
            }
            ra_flag_invalid();
            return;
        }
        for (npy_intp i = 0; i < m; i++) {
            for (npy_intp t = 0; t < n; t++) {
                copy[i * n + t] = *(const T *)(x + i * sx + t * cx);
            }
        }
        x = (const char *)copy;
        sx = n * (npy_intp)sizeof(T);
        cx = sizeof(T);
    }
    if (span > 0) {
        ra_first_touch(lo, span);
    }
    if (m > 1 && n > 1 && (sy < 0 ? -sy : sy) < (cy < 0 ? -cy : cy)) {
        if (m < RA_FEW) {
            RA_FN(ra_few)(kind, m, n, x, sx, cx, y, sy, cy,
                          pN, sN, pinit, sinit, pstart, sstart);
        }
        else {
            RA_FN(ra_lanes)(kind, m, n, x, sx, cx, y, sy, cy,
                            pN, sN, pinit, sinit, pstart, sstart);
        }
    }
    else {
        RA_FN(ra_each)(kind, m, n, x, sx, cx, y, sy, cy,
                       pN, sN, pinit, sinit, pstart, sstart);
    }
    PyMem_RawFree(copy);
}

void
RA_FN(leaky_sum)(char **args, npy_intp const *dimensions,
                 npy_intp const *steps, void *NPY_UNUSED(data))
{
    RA_FN(ra_loop)(LEAKY_SUM, args, dimensions, steps);
}

void
RA_FN(ema)(char **args, npy_intp const *dimensions,
           npy_intp const *steps, void *NPY_UNUSED(data))
{
    RA_FN(ra_loop)(EMA, args, dimensions, steps);
}

void
RA_FN(warmup_mean)(char **args, npy_intp const *dimensions,
                   npy_intp const *steps, void *NPY_UNUSED(data))
{
    RA_FN(ra_loop)(WARMUP_MEAN, args, dimensions, steps);
}

#undef RA_LD
#undef RA_ST
#undef RA_FN
#undef RA_CAT
#undef RA_CAT_
