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
 * d = 1: psi[r] <- a psi[r] + m (z_1 + ... + z_B), a block of R
 * replicas at a time.
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
                double *z,          /* scratch, R B doubles */
                sim_gil *gil)
{
    for (npy_intp t = 0; t < steps; t++) {
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
 * d > 1: psi[i][r] <- a[i] psi[i][r] + sum_j M[i][j] zsum[j][r],
 * zsum[j][r] = sum_b z[r][b][j]. A block of R replicas at a time: its
 * normals are drawn in (r, b, j) order, summed over b into zsum laid out
 * (j, r), so the product with M runs along r and vectorises.
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
                double *restrict z,         /* scratch, R B d doubles */
                double *restrict zsum,      /* scratch, d R doubles */
                sim_gil *gil)
{
    for (npy_intp t = 0; t < steps; t++) {
        for (npy_intp r0 = 0; r0 < replicas; r0 += R) {
            npy_intp nr = replicas - r0 < R ? replicas - r0 : R;

            random_standard_normal_fill(bg, nr * B * d, z);

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

            for (npy_intp i = 0; i < d; i++) {
                double *restrict p = psi + i * replicas + r0;
                const double *Mi = M + i * d;
                double ai = a[i];

                for (npy_intp r = 0; r < nr; r++) {
                    p[r] *= ai;
                }
                for (npy_intp j = 0; j < d; j++) {
                    const double *restrict zj = zsum + j * R;
                    double mij = Mi[j];

                    for (npy_intp r = 0; r < nr; r++) {
                        p[r] += mij * zj[r];
                    }
                }
            }
            if (sim_poll(gil, nr * (B * d + d * d)) < 0) {
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
                  npy_intp *perm,       /* scratch, (n,) 0 .. n-1 */
                  uint64_t *rows,       /* scratch, (B,) */
                  double *grad,         /* scratch, (p,) */
                  sim_gil *gil)
{
    double scale = eta / (double)B;

    for (npy_intp t = 0; t < steps; t++) {
        for (npy_intp r = 0; r < replicas; r++) {
            double *ph = phi + r * p;

            sim_rows(bg, n, B, replace, perm, rows);

            memset(grad, 0, (size_t)p * sizeof(double));
            for (npy_intp b = 0; b < B; b++) {
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
            for (npy_intp j = 0; j < p; j++) {
                ph[j] -= scale * grad[j];
            }

            if (sim_poll(gil, 2 * B * p + B) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* out[k] = (1/B) sum_b G[k_b] for every batch k, out is (batches, d). */
static int
sim_batch_means(bitgen_t *bg,
                const double *G,        /* (n, d) rows to average */
                npy_intp n,
                npy_intp d,
                npy_intp B,             /* rows per batch */
                int replace,
                double *out,            /* (batches, d) */
                npy_intp batches,
                npy_intp *perm,         /* scratch, (n,) 0 .. n-1 */
                uint64_t *rows,         /* scratch, (B,) */
                sim_gil *gil)
{
    for (npy_intp k = 0; k < batches; k++) {
        double *o = out + k * d;

        sim_rows(bg, n, B, replace, perm, rows);

        memset(o, 0, (size_t)d * sizeof(double));
        for (npy_intp b = 0; b < B; b++) {
            const double *g = G + (npy_intp)rows[b] * d;

            for (npy_intp j = 0; j < d; j++) {
                o[j] += g[j];
            }
        }
        for (npy_intp j = 0; j < d; j++) {
            o[j] /= (double)B;
        }

        if (sim_poll(gil, B * d + B) < 0) {
            return -1;
        }
    }
    return 0;
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

/* n * m, or -1 with MemoryError if it would not fit in npy_intp. */
static npy_intp
sim_product(npy_intp n, npy_intp m)
{
    if (n < 0 || m < 0 || (m > 0 && n > NPY_MAX_INTP / m)) {
        PyErr_NoMemory();
        return -1;
    }
    return n * m;
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

/* n elements of el bytes (at least one byte), or NULL with MemoryError
 * if malloc refuses or the size does not fit in npy_intp. */
static void *
sim_alloc(npy_intp n, size_t el)
{
    npy_intp bytes = sim_product(n, (npy_intp)el);
    void *p;

    if (bytes < 0) {
        return NULL;
    }
    p = PyMem_RawMalloc(bytes > 0 ? (size_t)bytes : 1);
    if (p == NULL) {
        PyErr_NoMemory();
    }
    return p;
}

/* 0 .. n-1 for a Fisher-Yates draw, or NULL with MemoryError. */
static npy_intp *
sim_identity(npy_intp n)
{
    npy_intp *perm = sim_alloc(n, sizeof(npy_intp));

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
    npy_intp d, replicas, per, R, shape[2];
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

    /* R replicas per block: about SIM_BLOCK normals, at least one */
    per = sim_product(B, d);
    if (per < 0) {
        return NULL;
    }
    R = per >= SIM_BLOCK ? 1 : SIM_BLOCK / per;
    if (R > replicas) {
        R = replicas;
    }
    /* R per <= max(per, SIM_BLOCK) and R d <= max(d, SIM_BLOCK) */
    z = sim_alloc(R * per, sizeof(double));
    zsum = z == NULL ? NULL : sim_alloc(R * d, sizeof(double));
    if (zsum == NULL) {
        PyMem_RawFree(z);
        return NULL;
    }

    sim_release(&gil, poll);
    if (d == 1) {
        err = sim_gaussian_1d(bg, *(double *)PyArray_DATA(a_arr),
                              *(double *)PyArray_DATA(M_arr), B,
                              (double *)PyArray_DATA(psi_arr), replicas,
                              steps, R, z, &gil);
    }
    else {
        err = sim_gaussian_nd(bg, (const double *)PyArray_DATA(a_arr),
                              (const double *)PyArray_DATA(M_arr), d, B,
                              (double *)PyArray_DATA(psi_arr), replicas,
                              steps, R, z, zsum, &gil);
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
    npy_intp n, p, replicas, shape[2];
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
    rows = sim_alloc(B, sizeof(uint64_t));
    grad = rows == NULL ? NULL : sim_alloc(p, sizeof(double));
    if (grad == NULL) {
        PyMem_RawFree(perm);
        PyMem_RawFree(rows);
        return NULL;
    }

    sim_release(&gil, poll);
    err = sim_least_squares(bg, (const double *)PyArray_DATA(X_arr),
                            (const double *)PyArray_DATA(y_arr), n, p, eta,
                            B, replace, (double *)PyArray_DATA(phi_arr),
                            replicas, steps, perm, rows, grad, &gil);
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
    npy_intp n, d, batches, shape[2];
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
    rows = sim_alloc(B, sizeof(uint64_t));
    if (rows == NULL) {
        PyMem_RawFree(perm);
        return NULL;
    }

    sim_release(&gil, poll);
    err = sim_batch_means(bg, (const double *)PyArray_DATA(G_arr), n, d, B,
                          replace, (double *)PyArray_DATA(out_arr), batches,
                          perm, rows, &gil);
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
