/*
 * linear_impl.h -- the loops of linear.c for one data type. Included once
 * per type with T (the C type of the data), SFX (the name suffix) and
 * LIN_GEMM (the BLAS GEMM for T) defined.
 */
#define LIN_CAT_(a, b) a##b
#define LIN_CAT(a, b) LIN_CAT_(a, b)
#define LIN_FN(name) LIN_CAT(name, SFX)

#define LIN_EL ((npy_intp)sizeof(T))
/* element [a][c] of a strided matrix */
#define LIN_AT(p, a, c, sa, sc) (*(T *)((p) + (a) * (sa) + (c) * (sc)))

/* Every element of a strided matrix set to v. */
static void
LIN_FN(lin_fill)(npy_intp rows,     /* rows */
                 npy_intp cols,     /* columns */
                 char *p,           /* element [0][0] */
                 npy_intp sr,       /* stride between rows, bytes */
                 npy_intp sc,       /* stride between columns, bytes */
                 T v)               /* value */
{
    for (npy_intp a = 0; a < rows; a++) {
        for (npy_intp c = 0; c < cols; c++) {
            LIN_AT(p, a, c, sr, sc) = v;
        }
    }
}

/* dst (rows x cols, contiguous) = src, or src squared if square. */
static void
LIN_FN(lin_pack)(T *dst,            /* rows * cols elements */
                 npy_intp rows,     /* rows */
                 npy_intp cols,     /* columns */
                 const char *src,   /* element [0][0] */
                 npy_intp sr,       /* stride between rows, bytes */
                 npy_intp sc,       /* stride between columns, bytes */
                 int square)        /* store squares */
{
    for (npy_intp a = 0; a < rows; a++) {
        const char *row = src + a * sr;
        T *d = dst + a * cols;

        if (sc == LIN_EL) {
            const T *s = (const T *)row;

            if (square) {
                for (npy_intp c = 0; c < cols; c++) {
                    d[c] = s[c] * s[c];
                }
            }
            else {
                memcpy(d, s, (size_t)cols * sizeof(T));
            }
        }
        else {
            for (npy_intp c = 0; c < cols; c++) {
                T v = *(const T *)(row + c * sc);

                d[c] = square ? v * v : v;
            }
        }
    }
}

/* dst (strided) = src (rows x cols, contiguous). */
static void
LIN_FN(lin_unpack)(npy_intp rows,       /* rows */
                   npy_intp cols,       /* columns */
                   const T *src,        /* rows * cols elements */
                   char *dst,           /* element [0][0] */
                   npy_intp sr,         /* stride between rows, bytes */
                   npy_intp sc)         /* stride between columns, bytes */
{
    for (npy_intp a = 0; a < rows; a++) {
        for (npy_intp c = 0; c < cols; c++) {
            LIN_AT(dst, a, c, sr, sc) = src[a * cols + c];
        }
    }
}

/*
 * Z = alpha op(P) op(Q) + beta Z, with Z (m x n, column-major) given as
 * the operand z: if z.trans is 'N' the BLAS writes Z at z.p, if it is 'T'
 * the matrix at z.p is Z^T = op(Q)^T op(P)^T and is written as that.
 * beta = 0 ignores what Z held (NaN included).
 */
static void
LIN_FN(lin_gemm)(const lin_operand *z,  /* the output */
                 npy_intp m,            /* rows of Z */
                 npy_intp n,            /* columns of Z */
                 npy_intp k,            /* inner dimension */
                 double alpha,          /* scale of the product */
                 const lin_operand *P,  /* left factor */
                 char tp,               /* op of P: 'N' or 'T' */
                 const lin_operand *Q,  /* right factor */
                 char tq,               /* op of Q */
                 double beta)           /* scale of Z before */
{
    T a = (T)alpha, bt = (T)beta;
    int im = (int)m, in = (int)n, ik = (int)k;
    int ldp = P->ld, ldq = Q->ld, ldz = z->ld;
    char ta, tb;

    if (z->trans == 'N') {
        ta = tp;
        tb = tq;
        LIN_GEMM(&ta, &tb, &im, &in, &ik, &a, (T *)P->p, &ldp,
                 (T *)Q->p, &ldq, &bt, (T *)z->p, &ldz);
    }
    else {
        ta = lin_flip(tq);
        tb = lin_flip(tp);
        LIN_GEMM(&ta, &tb, &in, &im, &ik, &a, (T *)Q->p, &ldq,
                 (T *)P->p, &ldp, &bt, (T *)z->p, &ldz);
    }
}

/* The operand v moved down by `rows` rows of stride sr. */
static lin_operand
LIN_FN(lin_down)(const lin_operand *v, npy_intp rows, npy_intp sr)
{
    lin_operand w = *v;

    w.p += rows * sr;
    return w;
}

/*
 * out (B x m) = data (B x k) times op(W)^T, block by block over the rows:
 * forward has op(W) = W (m = nj, k = ni), input_grad op(W) = W^T (m = ni,
 * k = nj). As column-major products, out^T = op(W) data^T.
 * Returns -1 if a dimension is beyond the BLAS or scratch is refused.
 */
static int
LIN_FN(lin_apply)(int forward,          /* 1: forward, 0: input_grad */
                  npy_intp B,           /* rows of data and out */
                  npy_intp nj,          /* rows of W */
                  npy_intp ni,          /* columns of W */
                  char *W,              /* W[0][0] */
                  npy_intp swj,         /* stride of W along j, bytes */
                  npy_intp swi,         /* stride of W along i, bytes */
                  char *data,           /* x (forward) or ygrad */
                  npy_intp sdb,         /* stride of data along b */
                  npy_intp sdk,         /* stride of data along k */
                  char *out,            /* y (forward) or x.grad */
                  npy_intp sob,         /* stride of out along b */
                  npy_intp som,         /* stride of out along m */
                  lin_buffer *buf)      /* scratch */
{
    npy_intp m = forward ? nj : ni, k = forward ? ni : nj, rows, row_bytes;
    lin_operand w, dv, ov, q, z;
    int data_direct, out_direct;
    char tw;

    if (!lin_fits_blas(ni) || !lin_fits_blas(nj)) {
        return -1;
    }
    if (B == 0 || m == 0) {
        return 0;
    }
    if (k == 0) {
        LIN_FN(lin_fill)(B, m, out, sob, som, (T)0);
        return 0;
    }

    if (!lin_view(&w, W, nj, ni, swj, swi, LIN_EL)) {
        T *p = (T *)lin_reserve(&buf[LIN_BUF_OUT2], nj * ni, LIN_EL);

        if (p == NULL) {
            return -1;
        }
        LIN_FN(lin_pack)(p, nj, ni, W, swj, swi, 0);
        w = lin_packed((char *)p, ni);
    }
    tw = forward ? lin_flip(w.trans) : w.trans;

    data_direct = lin_view(&dv, data, B, k, sdb, sdk, LIN_EL);
    out_direct = lin_view(&ov, out, B, m, sob, som, LIN_EL);
    row_bytes = LIN_EL * ((data_direct ? 0 : k) + (out_direct ? 0 : m));
    rows = row_bytes == 0 ? (B < LIN_DIRECT_ROWS ? B : LIN_DIRECT_ROWS)
                          : lin_block_rows(B, row_bytes);
    if (!data_direct && lin_reserve(&buf[LIN_BUF_X], rows * k,
                                    LIN_EL) == NULL) {
        return -1;
    }
    if (!out_direct && lin_reserve(&buf[LIN_BUF_OUT], rows * m,
                                   LIN_EL) == NULL) {
        return -1;
    }

    for (npy_intp b0 = 0; b0 < B; b0 += rows) {
        npy_intp nb = B - b0 < rows ? B - b0 : rows;

        if (data_direct) {
            q = LIN_FN(lin_down)(&dv, b0, sdb);
        }
        else {
            LIN_FN(lin_pack)((T *)buf[LIN_BUF_X].p, nb, k,
                             data + b0 * sdb, sdb, sdk, 0);
            q = lin_packed(buf[LIN_BUF_X].p, k);
        }
        z = out_direct ? LIN_FN(lin_down)(&ov, b0, sob)
                       : lin_packed(buf[LIN_BUF_OUT].p, m);

        LIN_FN(lin_gemm)(&z, m, nb, k, 1.0, &w, tw, &q, q.trans, 0.0);

        if (!out_direct) {
            LIN_FN(lin_unpack)(nb, m, (const T *)buf[LIN_BUF_OUT].p,
                               out + b0 * sob, sob, som);
        }
    }
    return 0;
}

/*
 * W.grad (if g) and W.grad2 (if g2) of one core, block by block over b:
 *     W.grad^T  = (1/B) x^T ygrad,     W.grad2^T = (1/B) (x^2)^T ygrad^2
 * as column-major products (ni x B times B x nj). Blocks of x and ygrad
 * that the BLAS can read in place are not copied for W.grad; the squares
 * are always formed in scratch, LIN_ROWS rows at a time at most.
 * Returns -1 if a dimension is beyond the BLAS or scratch is refused.
 */
static int
LIN_FN(lin_moments)(npy_intp B,         /* samples */
                    npy_intp ni,        /* inputs */
                    npy_intp nj,        /* outputs */
                    char *x,            /* x[0][0] */
                    npy_intp sxb,       /* stride of x along b, bytes */
                    npy_intp sxi,       /* stride of x along i, bytes */
                    char *y,            /* ygrad[0][0] */
                    npy_intp syb,       /* stride of ygrad along b */
                    npy_intp syj,       /* stride of ygrad along j */
                    char *g,            /* W.grad[0][0], or NULL */
                    npy_intp sgj,       /* stride of W.grad along j */
                    npy_intp sgi,       /* stride of W.grad along i */
                    char *g2,           /* W.grad2[0][0], or NULL */
                    npy_intp sg2j,      /* stride of W.grad2 along j */
                    npy_intp sg2i,      /* stride of W.grad2 along i */
                    lin_buffer *buf)    /* scratch */
{
    lin_operand xv, yv, gv, g2v, p, q;
    int x_direct, y_direct, g_direct = 1, g2_direct = 1, g_whole;
    npy_intp rows, row_items = 0;
    double alpha;

    if (!lin_fits_blas(ni) || !lin_fits_blas(nj)) {
        return -1;
    }
    if (ni == 0 || nj == 0) {
        return 0;
    }
    if (B == 0) {
        return -1;
    }

    x_direct = lin_view(&xv, x, B, ni, sxb, sxi, LIN_EL);
    y_direct = lin_view(&yv, y, B, nj, syb, syj, LIN_EL);
    if (g != NULL) {
        g_direct = lin_view(&gv, g, nj, ni, sgj, sgi, LIN_EL);
        row_items += (x_direct ? 0 : ni) + (y_direct ? 0 : nj);
    }
    if (g2 != NULL) {
        g2_direct = lin_view(&g2v, g2, nj, ni, sg2j, sg2i, LIN_EL);
        row_items += ni + nj;
    }
    rows = row_items == 0 ? (B < LIN_DIRECT_ROWS ? B : LIN_DIRECT_ROWS)
                          : lin_block_rows(B, row_items * LIN_EL);

    if ((g != NULL && !x_direct
         && lin_reserve(&buf[LIN_BUF_X], rows * ni, LIN_EL) == NULL)
        || (g != NULL && !y_direct
            && lin_reserve(&buf[LIN_BUF_Y], rows * nj, LIN_EL) == NULL)
        || (g2 != NULL
            && (lin_reserve(&buf[LIN_BUF_X2], rows * ni, LIN_EL) == NULL
                || lin_reserve(&buf[LIN_BUF_Y2], rows * nj,
                               LIN_EL) == NULL))) {
        return -1;
    }
    if (!g_direct) {
        if (lin_reserve(&buf[LIN_BUF_OUT], nj * ni, LIN_EL) == NULL) {
            return -1;
        }
        gv = lin_packed(buf[LIN_BUF_OUT].p, ni);
    }
    if (!g2_direct) {
        if (lin_reserve(&buf[LIN_BUF_OUT2], nj * ni, LIN_EL) == NULL) {
            return -1;
        }
        g2v = lin_packed(buf[LIN_BUF_OUT2].p, ni);
    }

    alpha = 1.0 / (double)B;

    /* Data the BLAS reads as they lie give W.grad in GEMMs of up to
     * LIN_DIRECT_ROWS rows, not one per block of the squares. */
    g_whole = g != NULL && x_direct && y_direct;
    for (npy_intp b0 = 0; g_whole && b0 < B; b0 += LIN_DIRECT_ROWS) {
        npy_intp nb = B - b0 < LIN_DIRECT_ROWS ? B - b0 : LIN_DIRECT_ROWS;

        p = LIN_FN(lin_down)(&xv, b0, sxb);
        q = LIN_FN(lin_down)(&yv, b0, syb);
        LIN_FN(lin_gemm)(&gv, ni, nj, nb, alpha, &p, p.trans,
                         &q, lin_flip(q.trans), b0 == 0 ? 0.0 : 1.0);
    }

    for (npy_intp b0 = 0; b0 < B; b0 += rows) {
        npy_intp nb = B - b0 < rows ? B - b0 : rows;
        double beta = b0 == 0 ? 0.0 : 1.0;
        char *xb = x + b0 * sxb, *yb = y + b0 * syb;

        if (g != NULL && !g_whole) {
            if (x_direct) {
                p = LIN_FN(lin_down)(&xv, b0, sxb);
            }
            else {
                LIN_FN(lin_pack)((T *)buf[LIN_BUF_X].p, nb, ni,
                                 xb, sxb, sxi, 0);
                p = lin_packed(buf[LIN_BUF_X].p, ni);
            }
            if (y_direct) {
                q = LIN_FN(lin_down)(&yv, b0, syb);
            }
            else {
                LIN_FN(lin_pack)((T *)buf[LIN_BUF_Y].p, nb, nj,
                                 yb, syb, syj, 0);
                q = lin_packed(buf[LIN_BUF_Y].p, nj);
            }
            LIN_FN(lin_gemm)(&gv, ni, nj, nb, alpha, &p, p.trans,
                             &q, lin_flip(q.trans), beta);
        }
        if (g2 != NULL) {
            LIN_FN(lin_pack)((T *)buf[LIN_BUF_X2].p, nb, ni,
                             xb, sxb, sxi, 1);
            LIN_FN(lin_pack)((T *)buf[LIN_BUF_Y2].p, nb, nj,
                             yb, syb, syj, 1);
            p = lin_packed(buf[LIN_BUF_X2].p, ni);
            q = lin_packed(buf[LIN_BUF_Y2].p, nj);
            LIN_FN(lin_gemm)(&g2v, ni, nj, nb, alpha, &p, p.trans,
                             &q, lin_flip(q.trans), beta);
        }
    }

    if (g != NULL && !g_direct) {
        LIN_FN(lin_unpack)(nj, ni, (const T *)buf[LIN_BUF_OUT].p,
                           g, sgj, sgi);
    }
    if (g2 != NULL && !g2_direct) {
        LIN_FN(lin_unpack)(nj, ni, (const T *)buf[LIN_BUF_OUT2].p,
                           g2, sg2j, sg2i);
    }
    return 0;
}

/* rows x cols of a strided T matrix into contiguous doubles */
static void
LIN_FN(lin_pack_double)(double *dst, npy_intp rows, npy_intp cols,
                        const char *src, npy_intp sr, npy_intp sc)
{
    for (npy_intp a = 0; a < rows; a++) {
        for (npy_intp c = 0; c < cols; c++) {
            dst[a * cols + c] = (double)LIN_AT(src, a, c, sr, sc);
        }
    }
}

/*
 * The variance over b of g[b, j, i] = ygrad[b, j] x[b, i] for one core,
 * one output tile (LIN_TJ x LIN_TI) at a time, in double:
 *     pass 1:  mean = (1/B) sum_b g[b]
 *     pass 2:  s = sum_b d_b,  q = sum_b d_b^2,  d_b = g[b] - mean
 *     var = (q - s^2 / B) / (B - ddof)
 * s is the rounding error of the mean; subtracting s^2 / B removes its
 * first-order effect. q - s^2 / B >= 0 holds exactly for real numbers;
 * a rounding below zero is returned as 0. work holds
 * 3 LIN_TJ LIN_TI + LIN_TB (LIN_TI + LIN_TJ) doubles.
 */
static void
LIN_FN(lin_variance)(npy_intp B,        /* samples, > ddof */
                     npy_intp ni,       /* inputs */
                     npy_intp nj,       /* outputs */
                     const char *x,     /* x[0][0] */
                     npy_intp sxb,      /* stride of x along b, bytes */
                     npy_intp sxi,      /* stride of x along i, bytes */
                     const char *y,     /* ygrad[0][0] */
                     npy_intp syb,      /* stride of ygrad along b */
                     npy_intp syj,      /* stride of ygrad along j */
                     double ddof,       /* delta degrees of freedom */
                     char *v,           /* var[0][0] */
                     npy_intp svj,      /* stride of var along j */
                     npy_intp svi,      /* stride of var along i */
                     double *work)      /* scratch, see above */
{
    double *mean = work, *s = mean + LIN_TJ * LIN_TI;
    double *q = s + LIN_TJ * LIN_TI, *xp = q + LIN_TJ * LIN_TI;
    double *yp = xp + LIN_TB * LIN_TI;
    double invB = 1.0 / (double)B, dof = (double)B - ddof;

    for (npy_intp j0 = 0; j0 < nj; j0 += LIN_TJ) {
        npy_intp tj = nj - j0 < LIN_TJ ? nj - j0 : LIN_TJ;

        for (npy_intp i0 = 0; i0 < ni; i0 += LIN_TI) {
            npy_intp ti = ni - i0 < LIN_TI ? ni - i0 : LIN_TI;
            npy_intp nt = tj * ti;

            for (npy_intp t = 0; t < nt; t++) {
                mean[t] = s[t] = q[t] = 0.0;
            }

            for (int pass = 0; pass < 2; pass++) {
                for (npy_intp b0 = 0; b0 < B; b0 += LIN_TB) {
                    npy_intp nb = B - b0 < LIN_TB ? B - b0 : LIN_TB;

                    LIN_FN(lin_pack_double)(xp, nb, ti,
                                            x + b0 * sxb + i0 * sxi,
                                            sxb, sxi);
                    LIN_FN(lin_pack_double)(yp, nb, tj,
                                            y + b0 * syb + j0 * syj,
                                            syb, syj);
                    for (npy_intp b = 0; b < nb; b++) {
                        const double *xr = xp + b * ti;

                        for (npy_intp jj = 0; jj < tj; jj++) {
                            double yv = yp[b * tj + jj];
                            double *mr = mean + jj * ti;

                            if (pass == 0) {
                                for (npy_intp ii = 0; ii < ti; ii++) {
                                    mr[ii] += yv * xr[ii];
                                }
                            }
                            else {
                                double *sr = s + jj * ti, *qr = q + jj * ti;

                                for (npy_intp ii = 0; ii < ti; ii++) {
                                    double d = yv * xr[ii] - mr[ii];

                                    sr[ii] += d;
                                    qr[ii] += d * d;
                                }
                            }
                        }
                    }
                }
                if (pass == 0) {
                    for (npy_intp t = 0; t < nt; t++) {
                        mean[t] *= invB;
                    }
                }
            }

            for (npy_intp jj = 0; jj < tj; jj++) {
                for (npy_intp ii = 0; ii < ti; ii++) {
                    npy_intp t = jj * ti + ii;
                    double var = (q[t] - s[t] * (s[t] * invB)) / dof;

                    /* no ordered comparison, which would raise the
                     * invalid flag on NaN data (isless too, once gcc
                     * vectorizes it) */
                    if (signbit(var) && var == var) {
                        var = 0.0;
                    }
                    LIN_AT(v, j0 + jj, i0 + ii, svj, svi) = (T)var;
                }
            }
        }
    }
}

/*
 * The n cores of an input (rows x cols each, *step bytes apart, strides
 * *sr, *sc) packed into scratch if they share memory with the output
 * span [lo, hi) of the same call; *p, *step and the strides then
 * describe the copy. NumPy copies an input that overlaps an output,
 * except when the two are the very same array, which it takes for an
 * elementwise operand; but a core writes its output while it still
 * reads its inputs (a GEMM, blocks of rows, tiles), and with axes= the
 * output of one core can lie on the input of another. Returns 0, or -1
 * if scratch is refused.
 */
static int
LIN_FN(lin_detach)(char **p, npy_intp *step, npy_intp n,
                   npy_intp rows, npy_intp cols,
                   npy_intp *sr, npy_intp *sc,
                   const char *lo, const char *hi, lin_buffer *buf)
{
    npy_intp shape[3] = {n, rows, cols}, strides[3] = {*step, *sr, *sc};
    npy_intp size = rows * cols;
    const char *a, *b;
    T *dst;

    lin_span(*p, 3, shape, strides, LIN_EL, &a, &b);
    if (!lin_spans_meet(a, b, lo, hi)) {
        return 0;
    }
    if (size > 0 && n > NPY_MAX_INTP / size) {
        return -1;
    }
    dst = (T *)lin_reserve(buf, n * size, LIN_EL);
    if (dst == NULL) {
        return -1;
    }
    for (npy_intp t = 0; t < n; t++) {
        LIN_FN(lin_pack)(dst + t * size, rows, cols, *p + t * *step,
                         *sr, *sc, 0);
    }
    *p = (char *)dst;
    *step = size * LIN_EL;
    *sr = cols * LIN_EL;
    *sc = LIN_EL;
    return 0;
}

/* The span [*lo, *hi) of the n output cores (rows x cols) of a call. */
static void
LIN_FN(lin_out_span)(const char *p, npy_intp step, npy_intp n,
                     npy_intp rows, npy_intp cols, npy_intp sr,
                     npy_intp sc, const char **lo, const char **hi)
{
    npy_intp shape[3] = {n, rows, cols}, strides[3] = {step, sr, sc};

    lin_span(p, 3, shape, strides, LIN_EL, lo, hi);
}

/* NaN in the n output cores of a call, and the invalid flag. */
static void
LIN_FN(lin_fail)(char *p, npy_intp step, npy_intp n, npy_intp rows,
                 npy_intp cols, npy_intp sr, npy_intp sc)
{
    for (npy_intp t = 0; t < n; t++) {
        LIN_FN(lin_fill)(rows, cols, p + t * step, sr, sc, (T)NPY_NAN);
    }
    lin_flag_invalid();
}

/* Loops that NumPy calls: args, then outer strides, then core strides. */

/*
 * forward and input_grad: the data operand (x or ygrad, (b, k)) times
 * W (j, i) into the output (b, m): forward contracts over i (k = i,
 * m = j), input_grad over j (k = j, m = i).
 */
static void
LIN_FN(lin_apply_loop)(int forward, char **args,
                       npy_intp const *dimensions, npy_intp const *steps)
{
    npy_intp n = dimensions[0], nj = dimensions[1], ni = dimensions[2];
    npy_intp B = dimensions[3];
    npy_intp k = forward ? ni : nj, m = forward ? nj : ni;
    npy_intp const *cs = steps + 3;
    lin_buffer buf[LIN_NBUF] = {{NULL, 0}};

    char *W0 = args[0], *d0 = args[1];
    npy_intp sW = steps[0], sd = steps[1];
    npy_intp swj = cs[0], swi = cs[1], sdb = cs[2], sdk = cs[3];
    const char *lo, *hi;

    LIN_FN(lin_out_span)(args[2], steps[2], n, B, m, cs[4], cs[5],
                         &lo, &hi);
    if (LIN_FN(lin_detach)(&W0, &sW, n, nj, ni, &swj, &swi, lo, hi,
                           &buf[LIN_BUF_IN0]) < 0
        || LIN_FN(lin_detach)(&d0, &sd, n, B, k, &sdb, &sdk, lo, hi,
                              &buf[LIN_BUF_IN1]) < 0) {
        LIN_FN(lin_fail)(args[2], steps[2], n, B, m, cs[4], cs[5]);
        n = 0;
    }
    for (npy_intp t = 0; t < n; t++) {
        char *W = W0 + t * sW, *d = d0 + t * sd;
        char *out = args[2] + t * steps[2];

        if (LIN_FN(lin_apply)(forward, B, nj, ni, W, swj, swi,
                              d, sdb, sdk, out, cs[4], cs[5], buf) < 0) {
            LIN_FN(lin_fill)(B, m, out, cs[4], cs[5], (T)NPY_NAN);
            lin_flag_invalid();
        }
    }
    lin_release(buf, LIN_NBUF);
}

void
LIN_FN(linear_forward)(char **args, npy_intp const *dimensions,
                       npy_intp const *steps, void *NPY_UNUSED(data))
{
    /* (j,i),(b,i)->(b,j): W, x -> y */
    LIN_FN(lin_apply_loop)(1, args, dimensions, steps);
}

void
LIN_FN(linear_input_grad)(char **args, npy_intp const *dimensions,
                          npy_intp const *steps, void *NPY_UNUSED(data))
{
    /* (j,i),(b,j)->(b,i): W, ygrad -> x.grad */
    LIN_FN(lin_apply_loop)(0, args, dimensions, steps);
}

/* grad, grad2 and moments: which outputs a call of lin_moments fills */
static void
LIN_FN(lin_moments_loop)(int want_g, int want_g2, char **args,
                         npy_intp const *dimensions, npy_intp const *steps)
{
    /* (b,i),(b,j)->(j,i)[,(j,i)]: x, ygrad -> outputs */
    int nargs = 2 + want_g + want_g2;
    npy_intp n = dimensions[0], B = dimensions[1], ni = dimensions[2];
    npy_intp nj = dimensions[3];
    npy_intp const *cs = steps + nargs;
    /* core strides: x, ygrad, then those of each output asked for and
     * nothing after them (grad has no cs[6]) */
    int c2 = want_g ? 6 : 4;
    npy_intp sgj = want_g ? cs[4] : 0, sgi = want_g ? cs[5] : 0;
    npy_intp sg2j = want_g2 ? cs[c2] : 0, sg2i = want_g2 ? cs[c2 + 1] : 0;
    int k2 = want_g ? 3 : 2;
    lin_buffer buf[LIN_NBUF] = {{NULL, 0}};
    char *x0 = args[0], *y0 = args[1];
    npy_intp sx = steps[0], sy = steps[1];
    npy_intp sxb = cs[0], sxi = cs[1], syb = cs[2], syj = cs[3];
    int outs[2] = {want_g ? 2 : -1, want_g2 ? k2 : -1}, err = 0;

    for (int k = 0; k < 2 && err == 0; k++) {
        const char *lo, *hi;

        if (outs[k] < 0) {
            continue;
        }
        LIN_FN(lin_out_span)(args[outs[k]], steps[outs[k]], n, nj, ni,
                             k == 0 ? sgj : sg2j, k == 0 ? sgi : sg2i,
                             &lo, &hi);
        err = LIN_FN(lin_detach)(&x0, &sx, n, B, ni, &sxb, &sxi, lo, hi,
                                 &buf[LIN_BUF_IN0]);
        if (err == 0) {
            err = LIN_FN(lin_detach)(&y0, &sy, n, B, nj, &syb, &syj, lo,
                                     hi, &buf[LIN_BUF_IN1]);
        }
    }
    if (err < 0) {
        for (int k = 0; k < 2; k++) {
            if (outs[k] >= 0) {
                LIN_FN(lin_fail)(args[outs[k]], steps[outs[k]], n, nj, ni,
                                 k == 0 ? sgj : sg2j, k == 0 ? sgi : sg2i);
            }
        }
        n = 0;
    }
    for (npy_intp t = 0; t < n; t++) {
        char *x = x0 + t * sx, *y = y0 + t * sy;
        char *g = want_g ? args[2] + t * steps[2] : NULL;
        char *g2 = want_g2 ? args[k2] + t * steps[k2] : NULL;

        if (LIN_FN(lin_moments)(B, ni, nj, x, sxb, sxi, y, syb, syj,
                                g, sgj, sgi, g2, sg2j, sg2i, buf) < 0) {
            if (g != NULL) {
                LIN_FN(lin_fill)(nj, ni, g, sgj, sgi, (T)NPY_NAN);
            }
            if (g2 != NULL) {
                LIN_FN(lin_fill)(nj, ni, g2, sg2j, sg2i, (T)NPY_NAN);
            }
            lin_flag_invalid();
        }
    }
    lin_release(buf, LIN_NBUF);
}

void
LIN_FN(linear_grad)(char **args, npy_intp const *dimensions,
                    npy_intp const *steps, void *NPY_UNUSED(data))
{
    LIN_FN(lin_moments_loop)(1, 0, args, dimensions, steps);
}

void
LIN_FN(linear_grad2)(char **args, npy_intp const *dimensions,
                     npy_intp const *steps, void *NPY_UNUSED(data))
{
    LIN_FN(lin_moments_loop)(0, 1, args, dimensions, steps);
}

void
LIN_FN(linear_moments)(char **args, npy_intp const *dimensions,
                       npy_intp const *steps, void *NPY_UNUSED(data))
{
    LIN_FN(lin_moments_loop)(1, 1, args, dimensions, steps);
}

void
LIN_FN(linear_per_sample_grad)(char **args, npy_intp const *dimensions,
                               npy_intp const *steps,
                               void *NPY_UNUSED(data))
{
    /* (b,i),(b,j)->(b,j,i): g[b, j, i] = ygrad[b, j] x[b, i] */
    npy_intp n = dimensions[0], B = dimensions[1], ni = dimensions[2];
    npy_intp nj = dimensions[3];
    npy_intp const *cs = steps + 3;
    npy_intp sxb = cs[0], sxi = cs[1], syb = cs[2], syj = cs[3];
    npy_intp sgb = cs[4], sgj = cs[5], sgi = cs[6];

    for (npy_intp t = 0; t < n; t++) {
        const char *x = args[0] + t * steps[0];
        const char *y = args[1] + t * steps[1];
        char *g = args[2] + t * steps[2];

        for (npy_intp b = 0; b < B; b++) {
            const char *xr = x + b * sxb;

            for (npy_intp j = 0; j < nj; j++) {
                T yv = *(const T *)(y + b * syb + j * syj);
                char *gr = g + b * sgb + j * sgj;

                if (sxi == LIN_EL && sgi == LIN_EL) {
                    const T *xc = (const T *)xr;
                    T *gc = (T *)gr;

                    for (npy_intp i = 0; i < ni; i++) {
                        gc[i] = yv * xc[i];
                    }
                }
                else {
                    for (npy_intp i = 0; i < ni; i++) {
                        *(T *)(gr + i * sgi) =
                            yv * *(const T *)(xr + i * sxi);
                    }
                }
            }
        }
    }
}

void
LIN_FN(linear_variance)(char **args, npy_intp const *dimensions,
                        npy_intp const *steps, void *NPY_UNUSED(data))
{
    /* (b,i),(b,j),()->(j,i): x, ygrad, ddof -> var */
    npy_intp n = dimensions[0], B = dimensions[1], ni = dimensions[2];
    npy_intp nj = dimensions[3];
    npy_intp const *cs = steps + 4;
    lin_buffer buf = {NULL, 0}, in[2] = {{NULL, 0}, {NULL, 0}};
    double *work = NULL;

    if (n > 0 && ni > 0 && nj > 0) {
        work = (double *)lin_reserve(
            &buf, 3 * LIN_TJ * LIN_TI + LIN_TB * (LIN_TI + LIN_TJ),
            sizeof(double));
    }
    char *x0 = args[0], *y0 = args[1];
    npy_intp sx = steps[0], sy = steps[1];
    npy_intp sxb = cs[0], sxi = cs[1], syb = cs[2], syj = cs[3];
    const char *lo, *hi;

    LIN_FN(lin_out_span)(args[3], steps[3], n, nj, ni, cs[4], cs[5],
                         &lo, &hi);
    if (LIN_FN(lin_detach)(&x0, &sx, n, B, ni, &sxb, &sxi, lo, hi,
                           &in[0]) < 0
        || LIN_FN(lin_detach)(&y0, &sy, n, B, nj, &syb, &syj, lo, hi,
                              &in[1]) < 0) {
        LIN_FN(lin_fail)(args[3], steps[3], n, nj, ni, cs[4], cs[5]);
        n = 0;
    }
    for (npy_intp t = 0; t < n; t++) {
        const char *x = x0 + t * sx;
        const char *y = y0 + t * sy;
        double ddof = *(const double *)(args[2] + t * steps[2]);
        char *v = args[3] + t * steps[3];

        if (ni == 0 || nj == 0) {
            continue;
        }
        if (work == NULL || !(ddof >= 0.0 && (double)B > ddof)) {
            LIN_FN(lin_fill)(nj, ni, v, cs[4], cs[5], (T)NPY_NAN);
            lin_flag_invalid();
            continue;
        }
        LIN_FN(lin_variance)(B, ni, nj, x, sxb, sxi, y, syb, syj,
                             ddof, v, cs[4], cs[5], work);
    }
    lin_release(&buf, 1);
    lin_release(in, 2);
}

#undef LIN_AT
#undef LIN_EL
#undef LIN_FN
#undef LIN_CAT
#undef LIN_CAT_
