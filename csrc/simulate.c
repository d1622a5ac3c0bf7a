/*
 * simulate.c -- the module sgdprob._simulate: Monte Carlo runs of SGD and
 * of its Langevin model, drawing from a NumPy Generator's bit generator.
 *
 * These are plain C functions, not gufuncs: a Generator cannot be a ufunc
 * operand. The Python layer (sgdprob/_montecarlo.py) checks every
 * argument, holds the bit generator's lock for the whole run and calls
 * the kernels below on C-contiguous float64 arrays; each kernel releases
 * the GIL for its loop.
 *
 *   linear_gaussian_steps(bitgen, a, M, B, psi, steps, poll)
 *       psi[:, r] <- a * psi[:, r] + M (z_1 + ... + z_B),  z_b ~ N(0, I_d)
 *       for every replica r, steps times; psi is (d, replicas). Both SGD
 *       on a quadratic and the Euler-Maruyama scheme of its Langevin
 *       model are this recursion in the eigenbasis of H:
 *         SGD       a = 1 - eta lambda,  M = -(eta / B) Q^T Sigma1^(1/2)
 *         Langevin  a = 1 - dt lambda,   M = sqrt(eta dt / B) Q^T
 *                   Sigma1^(1/2), one z per step (B = 1 here)
 *   least_squares_steps(bitgen, X, y, eta, B, replace, phi, steps, poll)
 *       phi[r] <- phi[r] - (eta / B) sum_b (X[k_b] . phi[r] - y[k_b]) X[k_b]
 *       with B rows k_b drawn for every replica and step; phi is
 *       (replicas, p).
 *   batch_means(bitgen, G, B, replace, out, poll)
 *       out[k] = (1/B) sum_b G[k_b], B rows drawn for every batch k.
 *
 * Order of the draws (what makes a run reproducible and replayable):
 *   normals  step by step; within a step replica by replica; within a
 *            replica sample b = 1 .. B; within a sample coordinate 1 .. d.
 *            That is the C order of Generator.standard_normal((steps,
 *            replicas, B, d)), and the normals are the same numbers: the
 *            ziggurat random_standard_normal of NumPy's npyrandom, which
 *            is what Generator.standard_normal calls.
 *   rows     the same order (step, replica, sample). With replacement one
 *            random_bounded_uint64_fill of B values in [0, n - 1] per
 *            replica and step: Generator.integers(0, n, size=B), which
 *            calls the same function. Without replacement a partial
 *            Fisher-Yates shuffle of 0 .. n-1: for b = 0 .. B-1 swap
 *            position b with b + Generator.integers(0, n - b) and take
 *            the first B; then the positions moved are reset, so every
 *            batch starts from 0 .. n-1 again.
 * Buffering normals in blocks changes none of this. No threads: one bit
 * generator is one stream.
 *
 * Ctrl-C: when called from the main thread (the only one that runs
 * signal handlers; the caller says which), every SIM_POLL units of work
 * (a normal, a multiply-add: a few to a few tens of milliseconds) the
 * loop takes the GIL back and calls PyErr_CheckSignals; if a handler
 * raised, the kernel stops between two blocks of work and returns NULL
 * with that exception (KeyboardInterrupt). The state arrays then hold a
 * partly advanced run. In other threads the loop never takes the GIL.
 * A batch larger than SIM_BLOCK normals or rows is drawn and summed in
 * pieces of about SIM_BLOCK, with a check between two pieces: the time
 * to stop and the scratch memory do not grow with B.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <numpy/arrayobject.h>
#include <numpy/random/distributions.h>

/* Normals drawn into the buffer at a time (32 KiB of doubles). */
#define SIM_BLOCK 4096
/* Units of work between two checks for a signal (4 to 40 ms). */
#define SIM_POLL (1 << 22)

/* The d x d product of sim_gaussian_nd runs along the replicas and
 * vectorises; on x86-64 Linux it is compiled twice, for AVX2 and for the
 * baseline, and the loader picks one for the machine. Both do the same
 * operations in the same order (no FMA: -ffp-contract=off), so they give
 * the same numbers. */
#if defined(__x86_64__) && defined(__linux__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define SIM_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef SIM_CLONES
#define SIM_CLONES
#endif

/* The loop's side of the GIL: released while it runs, taken back to
 * check for signals. */
typedef struct {
    PyThreadState *save;    /* from PyEval_SaveThread */
    npy_intp work;          /* units done since the last check */
    int poll;               /* check for signals (main thread only) */
} sim_gil;

static void
sim_release(sim_gil *g, int poll)
{
    g->work = 0;
    g->poll = poll;
    g->save = PyEval_SaveThread();
}

static void
sim_acquire(sim_gil *g)
{
    PyEval_RestoreThread(g->save);
}

/* Count work; every SIM_POLL units check for a signal. -1: stop. */
static int
sim_poll(sim_gil *g, npy_intp units)
{
    int err;

    g->work += units;
    if (!g->poll || g->work < SIM_POLL) {
        return 0;
    }
    g->work = 0;
    PyEval_RestoreThread(g->save);
    err = PyErr_CheckSignals();
    g->save = PyEval_SaveThread();
    return err;
}

/* ------------------------------------------------------------------ */
/* The kernels. Plain arguments; they neither allocate nor raise.      */
/* ------------------------------------------------------------------ */

/*
 * zsum[j] = sum_b z_b[j] for one replica's B samples of d normals, drawn
 * C samples at a time (the same normals, summed in the same order, as one
 * draw of all B) so that the scratch stays at C d doubles and the loop
 * checks for signals between two pieces however large B is.
 */
static int
sim_sum_samples(bitgen_t *bg,
                npy_intp d,
                npy_intp B,             /* samples to sum */
                npy_intp C,             /* samples per draw */
                double *restrict z,     /* scratch, C d doubles */
                double *restrict zsum,  /* (d,) the sums */
                sim_gil *gil)
{
    for (npy_intp b0 = 0; b0 < B; b0 += C) {
        npy_intp nb = B - b0 < C ? B - b0 : C;

        random_standard_normal_fill(bg, nb * d, z);
        for (npy_intp j = 0; j < d; j++) {
            double s = b0 == 0 ? z[j] : zsum[j] + z[j];

            for (npy_intp b = 1; b < nb; b++) {
                s += z[b * d + j];
            }
            zsum[j] = s;
        }
        if (sim_poll(gil, nb * d) < 0) {
            return -1;
        }
    }
    return 0;
}

/*
 * d = 1: psi[r] <- a psi[r] + m (z_1 + ... + z_B), a block of R
 * replicas at a time; with B > C one replica at a time (R = 1), its
 * normals C at a time.
 */
static int
sim_gaussian_1d(bitgen_t *bg,       /* the bit generator, lock held */
                double a,           /* decay per step */
                double m,           /* noise gain */
                npy_intp B,         /* normals summed per replica-step */
                double *psi,        /* state, one per replica */
                npy_intp replicas,
                npy_intp steps,
                npy_intp R,         /* replicas per block */
                npy_intp C,         /* normals per draw when B > C */
                double *z,          /* scratch, R B or C doubles */
                sim_gil *gil)
{
    for (npy_intp t = 0; t < steps; t++) {
        if (B > C) {
            for (npy_intp r = 0; r < replicas; r++) {
                double s = 0.0;        /* set by the first draw */

                if (sim_sum_samples(bg, 1, B, C, z, &s, gil) < 0) {
                    return -1;
                }
                psi[r] = a * psi[r] + m * s;
            }
            continue;
        }
        for (npy_intp r0 = 0; r0 < replicas; r0 += R) {
            npy_intp nr = replicas - r0 < R ? replicas - r0 : R;
            double *p = psi + r0;

            random_standard_normal_fill(bg, nr * B, z);
            if (B == 1) {
                for (npy_intp r = 0; r < nr; r++) {
                    p[r] = a * p[r] + m * z[r];
                }
            }
            else {
                for (npy_intp r = 0; r < nr; r++) {
                    const double *zr = z + r * B;
                    double s = zr[0];

                    for (npy_intp b = 1; b < B; b++) {
                        s += zr[b];
                    }
                    p[r] = a * p[r] + m * s;
                }
            }
            if (sim_poll(gil, nr * B) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/*
 * One coordinate i of every replica of a block:
 *     p[r] <- a_i p[r] + sum_j M[i][j] zsum[j][r],   j = 0 .. d-1 in order.
 * Where the compiler has vector types, eight replicas at a time are
 * summed in two 4-double registers while j runs, so p is read and written
 * once rather than once per j. Every replica sees the same operations in
 * the same order as in the plain loop, so the results are the same.
 */
#if defined(__GNUC__) || defined(__clang__)
typedef double sim_v4 __attribute__((vector_size(32)));
#define SIM_VECTOR 1
#endif

SIM_CLONES static void
sim_row_update(double ai,                   /* decay of coordinate i */
               const double *Mi,            /* (d,) row i of M */
               npy_intp d,
               const double *restrict zsum, /* (d, R) summed normals */
               npy_intp R,                  /* row stride of zsum */
               double *restrict p,          /* (nr,) state of coordinate i */
               npy_intp nr)
{
    npy_intp r = 0;

#ifdef SIM_VECTOR
    const sim_v4 av = {ai, ai, ai, ai};

    for (; r + 8 <= nr; r += 8) {
        sim_v4 lo, hi, zlo, zhi;

        memcpy(&lo, p + r, sizeof lo);
        memcpy(&hi, p + r + 4, sizeof hi);
        lo = av * lo;
        hi = av * hi;
        for (npy_intp j = 0; j < d; j++) {
            const double *zj = zsum + j * R + r;
            const sim_v4 m = {Mi[j], Mi[j], Mi[j], Mi[j]};

            memcpy(&zlo, zj, sizeof zlo);
            memcpy(&zhi, zj + 4, sizeof zhi);
            lo = lo + m * zlo;
            hi = hi + m * zhi;
        }
        memcpy(p + r, &lo, sizeof lo);
        memcpy(p + r + 4, &hi, sizeof hi);
    }
#endif

    for (; r < nr; r++) {
        double acc = ai * p[r];

        for (npy_intp j = 0; j < d; j++) {
            acc += Mi[j] * zsum[j * R + r];
        }
        p[r] = acc;
    }
}

/*
 * d > 1: psi[i][r] <- a[i] psi[i][r] + sum_j M[i][j] zsum[j][r],
 * zsum[j][r] = sum_b z[r][b][j]. A block of R replicas at a time: its
 * normals are drawn in (r, b, j) order, summed over b into zsum laid out
 * (j, r), so the product with M runs along r and vectorises. With B > C
 * a block is one replica (R = 1), its samples drawn C at a time.
 */
SIM_CLONES static int
sim_gaussian_nd(bitgen_t *bg,
                const double *a,            /* (d,) decay per step */
                const double *M,            /* (d, d) noise gain */
                npy_intp d,
                npy_intp B,
                double *restrict psi,       /* (d, replicas) state */
                npy_intp replicas,
                npy_intp steps,
                npy_intp R,                 /* replicas per block */
                npy_intp C,                 /* samples per draw, B > C */
                double *restrict z,         /* scratch, R B d or C d */
                double *restrict zsum,      /* scratch, d R doubles */
                sim_gil *gil)
{
    for (npy_intp t = 0; t < steps; t++) {
        for (npy_intp r0 = 0; r0 < replicas; r0 += R) {
            npy_intp nr = replicas - r0 < R ? replicas - r0 : R;

            if (B > C) {
                if (sim_sum_samples(bg, d, B, C, z, zsum, gil) < 0) {
                    return -1;
                }
            }
            else {
                random_standard_normal_fill(bg, nr * B * d, z);

                if (B == 1) {
                    /* a transpose: down the columns of z, along rows */
                    for (npy_intp j = 0; j < d; j++) {
                        const double *restrict zj = z + j;
                        double *restrict out = zsum + j * R;

                        for (npy_intp r = 0; r < nr; r++) {
                            out[r] = zj[r * d];
                        }
                    }
                }
                else {
                    for (npy_intp r = 0; r < nr; r++) {
                        const double *restrict zr = z + r * B * d;

                        for (npy_intp j = 0; j < d; j++) {
                            double s = zr[j];

                            for (npy_intp b = 1; b < B; b++) {
                                s += zr[b * d + j];
                            }
                            zsum[j * R + r] = s;
                        }
                    }
                }
            }

            for (npy_intp i = 0; i < d; i++) {
                sim_row_update(a[i], M + i * d, d, zsum, R,
                               psi + i * replicas + r0, nr);
            }
            if (sim_poll(gil, nr * (B > C ? 0 : B * d) + nr * d * d) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/*
 * B row numbers in [0, n) into rows. With replacement they are
 * independent and uniform; without, a uniform B-subset in the order of a
 * partial Fisher-Yates shuffle of perm, which must hold 0 .. n-1 and
 * holds it again on return.
 */
static void
sim_rows(bitgen_t *bg,
         npy_intp n,            /* rows to draw from */
         npy_intp B,            /* rows to draw, <= n without replace */
         int replace,
         npy_intp *perm,        /* (n,) 0 .. n-1; unused with replace */
         uint64_t *rows)        /* (B,) the rows drawn */
{
    if (replace) {
        random_bounded_uint64_fill(bg, 0, (uint64_t)(n - 1), B, false,
                                   rows);
        return;
    }

    for (npy_intp b = 0; b < B; b++) {
        uint64_t k;
        npy_intp j, tmp;

        random_bounded_uint64_fill(bg, 0, (uint64_t)(n - 1 - b), 1, false,
                                   &k);
        j = b + (npy_intp)k;
        tmp = perm[b];
        perm[b] = perm[j];
        perm[j] = tmp;
        rows[b] = (uint64_t)perm[b];
    }

    /* Only positions below B and positions whose own number was drawn
     * have moved (a position j >= B first touched sends the number j to
     * the front for good), so resetting those restores 0 .. n-1. */
    for (npy_intp b = 0; b < B; b++) {
        perm[b] = b;
        perm[rows[b]] = (npy_intp)rows[b];
    }
}

/*
 * SGD on least squares, phi is (replicas, p):
 *     phi[r] <- phi[r] - (eta / B) sum_b (X[k_b] . phi[r] - y[k_b]) X[k_b]
 * With replacement the B rows are drawn and summed C at a time (the same
 * rows as one draw of B), so the scratch and the work between two checks
 * for a signal stay bounded however large B is; without, B <= n.
 */
static int
sim_least_squares(bitgen_t *bg,
                  const double *X,      /* (n, p) features */
                  const double *y,      /* (n,) responses */
                  npy_intp n,
                  npy_intp p,
                  double eta,           /* learning rate */
                  npy_intp B,           /* batch size */
                  int replace,
                  double *phi,          /* (replicas, p) state */
                  npy_intp replicas,
                  npy_intp steps,
                  npy_intp C,           /* rows per draw; B without */
                  npy_intp *perm,       /* scratch, (n,) 0 .. n-1 */
                  uint64_t *rows,       /* scratch, (C,) */
                  double *grad,         /* scratch, (p,) */
                  sim_gil *gil)
{
    double scale = eta / (double)B;

    for (npy_intp t = 0; t < steps; t++) {
        for (npy_intp r = 0; r < replicas; r++) {
            double *ph = phi + r * p;

            memset(grad, 0, (size_t)p * sizeof(double));
            for (npy_intp b0 = 0; b0 < B; b0 += C) {
                npy_intp nb = B - b0 < C ? B - b0 : C;

                sim_rows(bg, n, nb, replace, perm, rows);
                for (npy_intp b = 0; b < nb; b++) {
                    const double *x = X + (npy_intp)rows[b] * p;
                    double res = 0.0;

                    for (npy_intp j = 0; j < p; j++) {
                        res += x[j] * ph[j];
                    }
                    res -= y[rows[b]];
                    for (npy_intp j = 0; j < p; j++) {
                        grad[j] += res * x[j];
                    }
                }
                if (sim_poll(gil, 2 * nb * p + nb) < 0) {
                    return -1;
                }
            }
            for (npy_intp j = 0; j < p; j++) {
                ph[j] -= scale * grad[j];
            }
        }
    }
    return 0;
}

/*
 * out[k] = (1/B) sum_b G[k_b] for every batch k, out is (batches, d);
 * rows drawn C at a time as in sim_least_squares.
 */
static int
sim_batch_means(bitgen_t *bg,
                const double *G,        /* (n, d) rows to average */
                npy_intp n,
                npy_intp d,
                npy_intp B,             /* rows per batch */
                int replace,
                double *out,            /* (batches, d) */
                npy_intp batches,
                npy_intp C,             /* rows per draw; B without */
                npy_intp *perm,         /* scratch, (n,) 0 .. n-1 */
                uint64_t *rows,         /* scratch, (C,) */
                sim_gil *gil)
{
    for (npy_intp k = 0; k < batches; k++) {
        double *o = out + k * d;

        memset(o, 0, (size_t)d * sizeof(double));
        for (npy_intp b0 = 0; b0 < B; b0 += C) {
            npy_intp nb = B - b0 < C ? B - b0 : C;

            sim_rows(bg, n, nb, replace, perm, rows);
            for (npy_intp b = 0; b < nb; b++) {
                const double *g = G + (npy_intp)rows[b] * d;

                for (npy_intp j = 0; j < d; j++) {
                    o[j] += g[j];
                }
            }
            if (sim_poll(gil, nb * d + nb) < 0) {
                return -1;
            }
        }
        for (npy_intp j = 0; j < d; j++) {
            o[j] /= (double)B;
        }
    }
    return 0;
}

/* Rows drawn at a time: B without replacement (a partial shuffle of
 * B <= n rows), at most SIM_BLOCK with. */
static npy_intp
sim_rows_per_draw(npy_intp B, int replace)
{
    return replace && B > SIM_BLOCK ? SIM_BLOCK : B;
}

/* ------------------------------------------------------------------ */
/* The functions of the module: check what reaches C, run a kernel.   */
/* The Python layer has checked the values; these checks only keep a  */
/* wrong call from crashing.                                          */
/* ------------------------------------------------------------------ */

static bitgen_t *
sim_bitgen(PyObject *capsule)
{
    if (!PyCapsule_IsValid(capsule, "BitGenerator")) {
        PyErr_SetString(PyExc_TypeError,
                        "bitgen must be the capsule of a NumPy "
                        "BitGenerator (bit_generator.capsule)");
        return NULL;
    }
    return (bitgen_t *)PyCapsule_GetPointer(capsule, "BitGenerator");
}

/* obj if it is an aligned C-contiguous array of type `type` with ndim
 * dimensions and the given shape (-1: any length), else NULL with an
 * exception; the reference is borrowed. */
static PyArrayObject *
sim_array(PyObject *obj,
          const char *name,
          int type,                 /* NPY_DOUBLE */
          int ndim,
          const npy_intp *shape,    /* (ndim,) */
          int writable)
{
    PyArrayObject *arr = (PyArrayObject *)obj;

    if (!PyArray_Check(obj) || PyArray_TYPE(arr) != type
            || PyArray_NDIM(arr) != ndim
            || !PyArray_IS_C_CONTIGUOUS(arr) || !PyArray_ISALIGNED(arr)
            || (writable && !PyArray_ISWRITEABLE(arr))) {
        PyErr_Format(PyExc_TypeError,
                     "%s must be a%s C-contiguous float64 array with %d "
                     "dimension%s", name, writable ? " writable" : "",
                     ndim, ndim == 1 ? "" : "s");
        return NULL;
    }
    for (int k = 0; k < ndim; k++) {
        if (shape[k] >= 0 && PyArray_DIM(arr, k) != shape[k]) {
            PyErr_Format(PyExc_ValueError,
                         "%s has length %zd along axis %d, not %zd",
                         name, (Py_ssize_t)PyArray_DIM(arr, k), k,
                         (Py_ssize_t)shape[k]);
            return NULL;
        }
    }
    return arr;
}

static int
sim_positive(npy_intp value, const char *name, npy_intp least)
{
    if (value < least) {
        PyErr_Format(PyExc_ValueError, "%s must be >= %zd, not %zd",
                     name, (Py_ssize_t)least, (Py_ssize_t)value);
        return -1;
    }
    return 0;
}

/* Scratch for count items of size bytes (at least one item), or NULL
 * with MemoryError naming what: count * size may exceed any memory (a
 * batch size of 2**62 draws 2**62 row numbers), so it is checked before
 * it is formed, not left to wrap around. */
static void *
sim_alloc(npy_intp count, size_t size, const char *what)
{
    void *p = NULL;

    if (count < 1) {
        count = 1;
    }
    if ((size_t)count <= (size_t)PY_SSIZE_T_MAX / size) {
        p = PyMem_RawMalloc((size_t)count * size);
    }
    if (p == NULL) {
        PyErr_Format(PyExc_MemoryError,
                     "cannot allocate %zd %s of %zu bytes each",
                     (Py_ssize_t)count, what, size);
    }
    return p;
}

/* 0 .. n-1 for a Fisher-Yates draw, or NULL with MemoryError. */
static npy_intp *
sim_identity(npy_intp n)
{
    npy_intp *perm = sim_alloc(n, sizeof(npy_intp),
                               "row numbers (the rows of the data)");

    if (perm == NULL) {
        return NULL;
    }
    for (npy_intp k = 0; k < n; k++) {
        perm[k] = k;
    }
    return perm;
}

static PyObject *
sim_linear_gaussian_steps(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *capsule, *a_obj, *M_obj, *psi_obj;
    PyArrayObject *a_arr, *M_arr, *psi_arr;
    Py_ssize_t B, steps;
    npy_intp d, replicas, C, R, zlen, shape[2];
    bitgen_t *bg;
    double *z, *zsum;
    sim_gil gil;
    int poll, err;

    if (!PyArg_ParseTuple(args, "OOOnOnp:linear_gaussian_steps", &capsule,
                          &a_obj, &M_obj, &B, &psi_obj, &steps, &poll)) {
        return NULL;
    }
    bg = sim_bitgen(capsule);
    if (bg == NULL || sim_positive(B, "B", 1) < 0
            || sim_positive(steps, "steps", 0) < 0) {
        return NULL;
    }
    shape[0] = -1;
    a_arr = sim_array(a_obj, "a", NPY_DOUBLE, 1, shape, 0);
    if (a_arr == NULL) {
        return NULL;
    }
    d = PyArray_DIM(a_arr, 0);
    shape[0] = shape[1] = d;
    M_arr = sim_array(M_obj, "M", NPY_DOUBLE, 2, shape, 0);
    shape[1] = -1;
    psi_arr = M_arr == NULL ? NULL
        : sim_array(psi_obj, "psi", NPY_DOUBLE, 2, shape, 1);
    if (psi_arr == NULL) {
        return NULL;
    }
    replicas = PyArray_DIM(psi_arr, 1);
    if (d == 0 || replicas == 0 || steps == 0) {
        Py_RETURN_NONE;
    }

    /* C samples per draw: about SIM_BLOCK normals, at least one
     * sample. When a replica's B samples fit in one draw, R replicas
     * per block, about SIM_BLOCK normals; else one replica per block,
     * its samples C at a time. Either way the scratch is about SIM_BLOCK
     * doubles (d if d is larger), whatever B is. */
    C = d >= SIM_BLOCK ? 1 : SIM_BLOCK / d;
    if (B > C) {
        R = 1;
        zlen = C * d;
    }
    else {
        R = SIM_BLOCK / (B * d);
        if (R > replicas) {
            R = replicas;
        }
        if (R < 1) {
            R = 1;
        }
        zlen = R * B * d;
    }
    z = sim_alloc(zlen, sizeof(double), "normals");
    zsum = z == NULL ? NULL : sim_alloc(R * d, sizeof(double), "sums");
    if (zsum == NULL) {
        PyMem_RawFree(z);
        return NULL;
    }

    sim_release(&gil, poll);
    if (d == 1) {
        err = sim_gaussian_1d(bg, *(double *)PyArray_DATA(a_arr),
                              *(double *)PyArray_DATA(M_arr), B,
                              (double *)PyArray_DATA(psi_arr), replicas,
                              steps, R, C, z, &gil);
    }
    else {
        err = sim_gaussian_nd(bg, (const double *)PyArray_DATA(a_arr),
                              (const double *)PyArray_DATA(M_arr), d, B,
                              (double *)PyArray_DATA(psi_arr), replicas,
                              steps, R, C, z, zsum, &gil);
    }
    sim_acquire(&gil);

    PyMem_RawFree(z);
    PyMem_RawFree(zsum);
    if (err < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
sim_least_squares_steps(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *capsule, *X_obj, *y_obj, *phi_obj;
    PyArrayObject *X_arr, *y_arr, *phi_arr;
    Py_ssize_t B, steps;
    double eta;
    int replace, poll, err;
    npy_intp n, p, replicas, C, shape[2];
    npy_intp *perm = NULL;
    uint64_t *rows;
    double *grad;
    bitgen_t *bg;
    sim_gil gil;

    if (!PyArg_ParseTuple(args, "OOOdnpOnp:least_squares_steps", &capsule,
                          &X_obj, &y_obj, &eta, &B, &replace, &phi_obj,
                          &steps, &poll)) {
        return NULL;
    }
    bg = sim_bitgen(capsule);
    if (bg == NULL || sim_positive(B, "B", 1) < 0
            || sim_positive(steps, "steps", 0) < 0) {
        return NULL;
    }
    shape[0] = shape[1] = -1;
    X_arr = sim_array(X_obj, "X", NPY_DOUBLE, 2, shape, 0);
    if (X_arr == NULL) {
        return NULL;
    }
    n = PyArray_DIM(X_arr, 0);
    p = PyArray_DIM(X_arr, 1);
    shape[0] = n;
    y_arr = sim_array(y_obj, "y", NPY_DOUBLE, 1, shape, 0);
    shape[0] = -1;
    shape[1] = p;
    phi_arr = y_arr == NULL ? NULL
        : sim_array(phi_obj, "phi", NPY_DOUBLE, 2, shape, 1);
    if (phi_arr == NULL || sim_positive(n, "the rows of X", 1) < 0
            || (!replace && sim_positive(n - B, "n - B", 0) < 0)) {
        return NULL;
    }
    replicas = PyArray_DIM(phi_arr, 0);
    if (replicas == 0 || steps == 0) {
        Py_RETURN_NONE;
    }

    if (!replace && (perm = sim_identity(n)) == NULL) {
        return NULL;
    }
    C = sim_rows_per_draw(B, replace);
    rows = sim_alloc(C, sizeof(uint64_t), "row numbers");
    grad = rows == NULL ? NULL : sim_alloc(p, sizeof(double), "gradients");
    if (grad == NULL) {
        PyMem_RawFree(perm);
        PyMem_RawFree(rows);
        return NULL;
    }

    sim_release(&gil, poll);
    err = sim_least_squares(bg, (const double *)PyArray_DATA(X_arr),
                            (const double *)PyArray_DATA(y_arr), n, p, eta,
                            B, replace, (double *)PyArray_DATA(phi_arr),
                            replicas, steps, C, perm, rows, grad, &gil);
    sim_acquire(&gil);

    PyMem_RawFree(perm);
    PyMem_RawFree(rows);
    PyMem_RawFree(grad);
    if (err < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
sim_batch_means_py(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *capsule, *G_obj, *out_obj;
    PyArrayObject *G_arr, *out_arr;
    Py_ssize_t B;
    int replace, poll, err;
    npy_intp n, d, batches, C, shape[2];
    npy_intp *perm = NULL;
    uint64_t *rows;
    bitgen_t *bg;
    sim_gil gil;

    if (!PyArg_ParseTuple(args, "OOnpOp:batch_means", &capsule, &G_obj,
                          &B, &replace, &out_obj, &poll)) {
        return NULL;
    }
    bg = sim_bitgen(capsule);
    if (bg == NULL || sim_positive(B, "B", 1) < 0) {
        return NULL;
    }
    shape[0] = shape[1] = -1;
    G_arr = sim_array(G_obj, "G", NPY_DOUBLE, 2, shape, 0);
    if (G_arr == NULL) {
        return NULL;
    }
    n = PyArray_DIM(G_arr, 0);
    d = PyArray_DIM(G_arr, 1);
    shape[1] = d;
    out_arr = sim_array(out_obj, "out", NPY_DOUBLE, 2, shape, 1);
    if (out_arr == NULL || sim_positive(n, "the rows of G", 1) < 0
            || (!replace && sim_positive(n - B, "n - B", 0) < 0)) {
        return NULL;
    }
    batches = PyArray_DIM(out_arr, 0);
    if (batches == 0) {
        Py_RETURN_NONE;
    }

    if (!replace && (perm = sim_identity(n)) == NULL) {
        return NULL;
    }
    C = sim_rows_per_draw(B, replace);
    rows = sim_alloc(C, sizeof(uint64_t), "row numbers");
    if (rows == NULL) {
        PyMem_RawFree(perm);
        return NULL;
    }

    sim_release(&gil, poll);
    err = sim_batch_means(bg, (const double *)PyArray_DATA(G_arr), n, d, B,
                          replace, (double *)PyArray_DATA(out_arr), batches,
                          C, perm, rows, &gil);
    sim_acquire(&gil);

    PyMem_RawFree(perm);
    PyMem_RawFree(rows);
    if (err < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ */
/* Registration                                                       */
/* ------------------------------------------------------------------ */

static PyMethodDef sim_methods[] = {
    {"linear_gaussian_steps", sim_linear_gaussian_steps, METH_VARARGS,
     "linear_gaussian_steps(bitgen, a, M, B, psi, steps, poll, /)\n"
     "\n"
     "Advance psi (d, replicas) in place, steps times:\n"
     "    psi[:, r] <- a * psi[:, r] + M (z_1 + ... + z_B),\n"
     "z_b ~ N(0, I_d) drawn in (step, replica, b, coordinate) order.\n"
     "bitgen is bit_generator.capsule; hold bit_generator.lock. poll:\n"
     "check for signals (pass True only from the main thread).\n"},
    {"least_squares_steps", sim_least_squares_steps, METH_VARARGS,
     "least_squares_steps(bitgen, X, y, eta, B, replace, phi, steps, poll,\n"
     "                    /)\n"
     "\n"
     "Advance phi (replicas, p) in place by steps of SGD on\n"
     "(1/2n) sum_k (X[k] . phi - y[k])^2, B rows per replica and step.\n"
     "bitgen is bit_generator.capsule; hold bit_generator.lock. poll:\n"
     "check for signals (pass True only from the main thread).\n"},
    {"batch_means", sim_batch_means_py, METH_VARARGS,
     "batch_means(bitgen, G, B, replace, out, poll, /)\n"
     "\n"
     "Fill out (batches, d) with the means of B rows of G drawn per\n"
     "batch. bitgen is bit_generator.capsule; hold bit_generator.lock.\n"
     "poll: check for signals (pass True only from the main thread).\n"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef sim_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sgdprob._simulate",
    .m_doc = "Monte Carlo kernels of sgdprob: SGD and Langevin runs that "
             "draw from a NumPy bit generator.",
    .m_size = -1,
    .m_methods = sim_methods,
};

PyMODINIT_FUNC
PyInit__simulate(void)
{
    import_array();
    return PyModule_Create(&sim_module);
}
