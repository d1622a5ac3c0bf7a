/*
 * linear.c -- gradients of a linear layer and the moments of its
 * per-sample gradients, as gufunc loops around the BLAS GEMM.
 *
 * The layer is y[b, j] = sum_i W[j, i] x[b, i], b < B, j < J, i < I, and
 * ygrad[b, j] is the derivative of sample b's own loss with respect to
 * y[b, j] (not divided by B). The per-sample gradient of W is then
 * W.grad[b, j, i] = ygrad[b, j] x[b, i].
 *
 *   linear_forward          (j,i),(b,i)->(b,j)        W, x -> y
 *       y[b, j] = sum_i W[j, i] x[b, i]
 *   linear_input_grad       (j,i),(b,j)->(b,i)        W, ygrad -> x.grad
 *       x.grad[b, i] = sum_j W[j, i] ygrad[b, j]
 *   linear_grad             (b,i),(b,j)->(j,i)        x, ygrad -> W.grad
 *       W.grad[j, i] = (1/B) sum_b ygrad[b, j] x[b, i]
 *   linear_per_sample_grad  (b,i),(b,j)->(b,j,i)      x, ygrad -> W.grad[b]
 *       W.grad[b, j, i] = ygrad[b, j] x[b, i]
 *   linear_grad2            (b,i),(b,j)->(j,i)        x, ygrad -> W.grad2
 *       W.grad2[j, i] = (1/B) sum_b ygrad[b, j]^2 x[b, i]^2
 *   linear_moments          (b,i),(b,j)->(j,i),(j,i)  W.grad, W.grad2
 *   linear_variance         (b,i),(b,j),()->(j,i)     x, ygrad, ddof -> var
 *       var[j, i] = sum_b (W.grad[b, j, i] - W.grad[j, i])^2 / (B - ddof)
 *
 * The contractions are matrix products and go to the GEMM of the BLAS
 * that SciPy ships (scipy.linalg.cython_blas, looked up once when the
 * module is imported). The squares of grad2 are fused with the GEMM: B is
 * cut into blocks of at most LIN_ROWS rows, each block of x and ygrad is
 * squared into a small scratch buffer and added to W.grad2 by one GEMM,
 * so W.grad2 never needs the B x J x I per-sample array; the scratch is
 * about LIN_SCRATCH bytes (more only if one row of x and ygrad is
 * larger). moments reads each block once for both of its products.
 *
 * variance does not use E[g^2] - E[g]^2, which loses every digit when
 * the spread of the per-sample gradients is small beside their mean. It
 * takes two passes over each tile of the output in double: the mean, then
 * the sum of squared deviations from it with the usual correction for the
 * rounding of the mean,
 *     var = (sum_b d_b^2 - (sum_b d_b)^2 / B) / (B - ddof),
 *     d_b = W.grad[b, j, i] - mean,
 * so the result has the accuracy of the data, is never negative, and
 * float32 data are accumulated in double. It costs a few flops per
 * (b, j, i) without the BLAS.
 *
 * Inside a loop nothing can raise: a core that cannot be computed (B = 0
 * for an average, B <= ddof, a dimension beyond the BLAS int, or scratch
 * memory that malloc refuses) has its outputs filled with NaN and the
 * floating-point invalid flag raised. The functions of sgdprob.linear
 * check their arguments first and raise ValueError instead.
 *
 * The loops are written once in linear_impl.h and instantiated below for
 * float (sgemm) and double (dgemm).
 */
#include "sgdprob.h"

#include <fenv.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <numpy/npy_math.h>

/* Scratch that a block of rows of x and ygrad may take, bytes. */
#define LIN_SCRATCH (3 << 20)
/* Most rows of x and ygrad in one block of grad2 and moments. */
#define LIN_ROWS 256
/* Most rows in one GEMM when the data go to the BLAS as they lie. */
#define LIN_DIRECT_ROWS (1 << 30)
/* variance: output tile (rows j, columns i) and rows of data per pass. */
#define LIN_TJ 32
#define LIN_TI 256
#define LIN_TB 64

/* The BLAS GEMM, Fortran convention: every argument by pointer. */
typedef void lin_sgemm_fn(char *transa, char *transb, int *m, int *n,
                          int *k, float *alpha, float *a, int *lda,
                          float *b, int *ldb, float *beta, float *c,
                          int *ldc);
typedef void lin_dgemm_fn(char *transa, char *transb, int *m, int *n,
                          int *k, double *alpha, double *a, int *lda,
                          double *b, int *ldb, double *beta, double *c,
                          int *ldc);

static lin_sgemm_fn *lin_sgemm = NULL;
static lin_dgemm_fn *lin_dgemm = NULL;

/* The start of the C signature that SciPy gives its ?gemm capsules. */
static const char lin_gemm_head[] =
    "void (char *, char *, int *, int *, int *, ";

static void *
lin_capsule(PyObject *capi, const char *name)
{
    PyObject *capsule = PyDict_GetItemString(capi, name);
    const char *sig;

    if (capsule == NULL || !PyCapsule_CheckExact(capsule)) {
        PyErr_Format(PyExc_ImportError,
                     "scipy.linalg.cython_blas does not export %s", name);
        return NULL;
    }
    sig = PyCapsule_GetName(capsule);
    if (sig == NULL || strncmp(sig, lin_gemm_head,
                               sizeof(lin_gemm_head) - 1) != 0) {
        PyErr_Format(PyExc_ImportError,
                     "scipy.linalg.cython_blas.%s has the C signature "
                     "'%s', not the 32-bit-int one sgdprob was built for",
                     name, sig ? sig : "(none)");
        return NULL;
    }
    return PyCapsule_GetPointer(capsule, sig);
}

int
sgdprob_linear_init(void)
{
    PyObject *blas = PyImport_ImportModule("scipy.linalg.cython_blas");
    PyObject *capi;
    void *s, *d;

    if (blas == NULL) {
        return -1;
    }
    capi = PyObject_GetAttrString(blas, "__pyx_capi__");
    Py_DECREF(blas);
    if (capi == NULL) {
        return -1;
    }
    if (!PyDict_Check(capi)) {
        Py_DECREF(capi);
        PyErr_SetString(PyExc_ImportError,
                        "scipy.linalg.cython_blas.__pyx_capi__ is not a "
                        "dict");
        return -1;
    }
    s = lin_capsule(capi, "sgemm");
    d = s == NULL ? NULL : lin_capsule(capi, "dgemm");
    Py_DECREF(capi);
    if (d == NULL) {
        return -1;
    }
    lin_sgemm = (lin_sgemm_fn *)s;
    lin_dgemm = (lin_dgemm_fn *)d;
    return 0;
}

/*
 * A strided matrix M (r x c; M[a][b] at p + a sr + b sc) seen by the
 * BLAS, which wants column-major matrices with a unit stride down the
 * columns. If the rows of M are contiguous, the column-major matrix at p
 * is M^T (trans 'N' makes op(A) = M^T); if its columns are, it is M
 * (trans 'T' makes op(A) = M^T again). Either way op_trans(A) = M^T, and
 * the opposite trans gives M. A block of rows of M starts at p + b0 sr
 * with the same trans and ld.
 */
typedef struct {
    char *p;        /* M[0][0] */
    char trans;     /* 'N' or 'T': op(A) = M^T */
    int ld;         /* leading dimension of A, elements */
} lin_operand;

static char
lin_flip(char trans)
{
    return trans == 'N' ? 'T' : 'N';
}

/* stride / el if it is a whole number of elements in [need, INT_MAX] */
static npy_intp
lin_ld(npy_intp stride,     /* bytes */
       npy_intp el,         /* element size, bytes */
       npy_intp need)       /* smallest leading dimension allowed */
{
    npy_intp ld;

    if (stride <= 0 || stride % el != 0) {
        return -1;
    }
    ld = stride / el;
    return ld >= (need > 1 ? need : 1) && ld <= INT_MAX ? ld : -1;
}

/* M as a BLAS operand without copying; 0 if its strides do not allow. */
static int
lin_view(lin_operand *v,        /* filled in */
         char *p,               /* M[0][0] */
         npy_intp r,            /* rows */
         npy_intp c,            /* columns */
         npy_intp sr,           /* stride between rows, bytes */
         npy_intp sc,           /* stride between columns, bytes */
         npy_intp el)           /* element size, bytes */
{
    npy_intp ld;

    v->p = p;
    if (c <= 1 || sc == el) {
        ld = r <= 1 ? (c > 1 ? c : 1) : lin_ld(sr, el, c);
        if (ld > 0 && ld <= INT_MAX) {
            v->trans = 'N';
            v->ld = (int)ld;
            return 1;
        }
    }
    if (r <= 1 || sr == el) {
        ld = c <= 1 ? (r > 1 ? r : 1) : lin_ld(sc, el, r);
        if (ld > 0 && ld <= INT_MAX) {
            v->trans = 'T';
            v->ld = (int)ld;
            return 1;
        }
    }
    return 0;
}

/* Scratch slots of one loop call. */
enum {
    LIN_BUF_X,      /* a block of rows of x (or of the data), packed */
    LIN_BUF_Y,      /* a block of rows of ygrad, packed */
    LIN_BUF_X2,     /* the same block of x, squared */
    LIN_BUF_Y2,     /* the same block of ygrad, squared */
    LIN_BUF_OUT,    /* an output the BLAS cannot write in place */
    LIN_BUF_OUT2,   /* the second output, or W packed */
    LIN_BUF_IN0,    /* the first input, if it shares memory with out */
    LIN_BUF_IN1,    /* the second input, likewise */
    LIN_NBUF
};

/* [*lo, *hi): the bytes that a strided array spans; empty if it has no
 * elements. */
static void
lin_span(const char *p,             /* element [0]...[0] */
         int ndim,                  /* axes */
         const npy_intp *shape,     /* (ndim,) lengths */
         const npy_intp *strides,   /* (ndim,) strides, bytes */
         npy_intp el,               /* element size, bytes */
         const char **lo,
         const char **hi)
{
    *lo = p;
    *hi = p + el;
    for (int k = 0; k < ndim; k++) {
        npy_intp reach = (shape[k] - 1) * strides[k];

        if (shape[k] == 0) {
            *hi = p;
            return;
        }
        if (reach < 0) {
            *lo += reach;
        }
        else {
            *hi += reach;
        }
    }
}

/* Whether the spans [lo1, hi1) and [lo2, hi2) share a byte. */
static int
lin_spans_meet(const char *lo1, const char *hi1,
               const char *lo2, const char *hi2)
{
    return lo1 < hi1 && lo2 < hi2 && lo1 < hi2 && lo2 < hi1;
}

/* A contiguous r x c matrix as a BLAS operand. */

static lin_operand
lin_packed(char *p, npy_intp c)
{
    lin_operand v;

    v.p = p;
    v.trans = 'N';
    v.ld = c > 1 ? (int)c : 1;
    return v;
}

/* Scratch memory of one loop call, grown on demand and freed at its end. */
typedef struct {
    char *p;
    size_t size;
} lin_buffer;

/* p of at least n elements of el bytes, or NULL if malloc refuses.
 * PyMem_RawMalloc needs no GIL and is seen by tracemalloc. */
static char *
lin_reserve(lin_buffer *buf, npy_intp n, npy_intp el)
{
    size_t bytes;

    if (n < 0 || (size_t)n > ((size_t)-1) / (size_t)el) {
        return NULL;
    }
    bytes = (size_t)n * (size_t)el;
    if (bytes == 0) {
        bytes = 1;
    }
    if (buf->size < bytes) {
        PyMem_RawFree(buf->p);
        buf->p = PyMem_RawMalloc(bytes);
        buf->size = buf->p == NULL ? 0 : bytes;
    }
    return buf->p;
}

static void
lin_release(lin_buffer *buf, int count)
{
    for (int k = 0; k < count; k++) {
        PyMem_RawFree(buf[k].p);
        buf[k].p = NULL;
        buf[k].size = 0;
    }
}

/* Rows per block when a row of the packed buffers takes row_bytes. */
static npy_intp
lin_block_rows(npy_intp B, npy_intp row_bytes)
{
    npy_intp rows = row_bytes > 0 ? LIN_SCRATCH / row_bytes : LIN_ROWS;

    if (rows > LIN_ROWS) {
        rows = LIN_ROWS;
    }
    if (rows < 1) {
        rows = 1;
    }
    return rows < B ? rows : (B > 0 ? B : 1);
}

static int
lin_fits_blas(npy_intp n)
{
    return n >= 0 && n <= INT_MAX;
}

static void
lin_flag_invalid(void)
{
    feraiseexcept(FE_INVALID);
}

#define T float
#define SFX _f
#define LIN_GEMM lin_sgemm
#include "linear_impl.h"
#undef T
#undef SFX
#undef LIN_GEMM

#define T double
#define SFX _d
#define LIN_GEMM lin_dgemm
#include "linear_impl.h"
#undef T
#undef SFX
#undef LIN_GEMM

/* Docstrings of the raw gufuncs, registered in _gufuncs.c. */

#define LIN_RAW_NOTE \
    "Loops: float32 and float64, any strides; the loop dimensions\n" \
    "broadcast. No argument checking: a core that cannot be computed\n" \
    "comes out NaN with the floating-point invalid flag raised.\n" \
    "sgdprob.linear checks its arguments and raises ValueError\n" \
    "instead; prefer it.\n"

const char linear_forward_doc[] =
    "linear_forward(W, x, /, out=None, *, axes=None, ...)\n"
    "\n"
    "Raw gufunc of the linear layer, core signature (j,i),(b,i)->(b,j).\n"
    "\n"
    "    y[b, j] = sum_i W[j, i] x[b, i]\n"
    "\n"
    LIN_RAW_NOTE;

const char linear_input_grad_doc[] =
    "linear_input_grad(W, ygrad, /, out=None, *, axes=None, ...)\n"
    "\n"
    "Raw gufunc of the gradient of a linear layer with respect to its\n"
    "input, core signature (j,i),(b,j)->(b,i).\n"
    "\n"
    "    x.grad[b, i] = sum_j W[j, i] ygrad[b, j]\n"
    "\n"
    LIN_RAW_NOTE;

const char linear_grad_doc[] =
    "linear_grad(x, ygrad, /, out=None, *, axes=None, ...)\n"
    "\n"
    "Raw gufunc of the batch-mean gradient of the weights of a linear\n"
    "layer, core signature (b,i),(b,j)->(j,i).\n"
    "\n"
    "    W.grad[j, i] = (1/B) sum_b ygrad[b, j] x[b, i]\n"
    "\n"
    "ygrad[b, j] is the derivative of sample b's own loss. B = 0 gives\n"
    "NaN.\n"
    "\n"
    LIN_RAW_NOTE;

const char linear_per_sample_grad_doc[] =
    "linear_per_sample_grad(x, ygrad, /, out=None, *, axes=None, ...)\n"
    "\n"
    "Raw gufunc of the per-sample gradients of the weights of a linear\n"
    "layer, core signature (b,i),(b,j)->(b,j,i).\n"
    "\n"
    "    W.grad[b, j, i] = ygrad[b, j] x[b, i]\n"
    "\n"
    LIN_RAW_NOTE;

const char linear_grad2_doc[] =
    "linear_grad2(x, ygrad, /, out=None, *, axes=None, ...)\n"
    "\n"
    "Raw gufunc of the batch mean of the squared per-sample gradients of\n"
    "the weights of a linear layer, core signature (b,i),(b,j)->(j,i).\n"
    "\n"
    "    W.grad2[j, i] = (1/B) sum_b ygrad[b, j]^2 x[b, i]^2\n"
    "\n"
    "Computed block by block over b with the BLAS, without the B x J x I\n"
    "per-sample array. B = 0 gives NaN.\n"
    "\n"
    LIN_RAW_NOTE;

const char linear_moments_doc[] =
    "linear_moments(x, ygrad, /, out=(None, None), *, axes=None, ...)\n"
    "\n"
    "Raw gufunc of W.grad and W.grad2 of a linear layer in one pass over\n"
    "the data, core signature (b,i),(b,j)->(j,i),(j,i).\n"
    "\n"
    "    W.grad[j, i]  = (1/B) sum_b ygrad[b, j] x[b, i]\n"
    "    W.grad2[j, i] = (1/B) sum_b ygrad[b, j]^2 x[b, i]^2\n"
    "\n"
    "B = 0 gives NaN.\n"
    "\n"
    LIN_RAW_NOTE;

const char linear_variance_doc[] =
    "linear_variance(x, ygrad, ddof, /, out=None, *, axes=None, ...)\n"
    "\n"
    "Raw gufunc of the variance over b of the per-sample gradients of\n"
    "the weights of a linear layer, core signature (b,i),(b,j),()->(j,i).\n"
    "\n"
    "    var[j, i] = sum_b (g[b, j, i] - mean_b g[b, j, i])^2 / (B - ddof)\n"
    "    g[b, j, i] = ygrad[b, j] x[b, i]\n"
    "\n"
    "Two passes in double (mean, then corrected squared deviations), so\n"
    "no cancellation; never negative. ddof is float64; B <= ddof, a\n"
    "negative or NaN ddof gives NaN.\n"
    "\n"
    LIN_RAW_NOTE;
