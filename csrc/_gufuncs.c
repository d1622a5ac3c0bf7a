/*
 * _gufuncs.c -- the module sgdprob._gufuncs: registers every kernel of
 * sgdprob as a NumPy generalized ufunc.
 *
 * The table below is the whole public surface of the module: one row per
 * gufunc with its name, core signature, number of inputs and outputs,
 * loops (one per dtype) and docstring. Adding a kernel means writing its
 * loops in a kernel file, declaring them in sgdprob.h and adding a row.
 */
#include "sgdprob.h"

#include <numpy/arrayobject.h>
#include <numpy/ufuncobject.h>

#define MAX_LOOPS 2
#define MAX_ARGS 13

typedef struct {
    const char *name;
    const char *signature;              /* NULL: an elementwise ufunc */
    int nin;
    int nout;
    int ntypes;
    PyUFuncGenericFunction funcs[MAX_LOOPS];
    char types[MAX_LOOPS * MAX_ARGS];   /* nin + nout type codes per loop */
    const char *doc;
} gufunc_spec;

static const char leaky_sum_doc[] =
    "leaky_sum(x, N, initial, /, out=None, *, axes=None, ...)\n"
    "\n"
    "Raw gufunc of the leaky running sum, core signature (n),(),()->(n).\n"
    "\n"
    "    y_0 = initial,  y_t = (1 - 1/N) y_{t-1} + x_t,  t = 1 .. n\n"
    "\n"
    "Loops: float32 and float64 data; N and initial are float64. The\n"
    "state is float64 for float32 data too. N >= 1, and N = inf gives the\n"
    "cumulative sum. An invalid N (below 1 or NaN) is not an exception\n"
    "here: that series comes out NaN and the floating-point invalid flag\n"
    "is raised (a RuntimeWarning, or FloatingPointError under\n"
    "np.errstate(invalid='raise')). sgdprob.leaky_sum checks its\n"
    "arguments and raises ValueError instead; prefer it.\n";

static const char ema_doc[] =
    "ema(x, N, initial, /, out=None, *, axes=None, ...)\n"
    "\n"
    "Raw gufunc of the exponential moving average, core signature\n"
    "(n),(),()->(n).\n"
    "\n"
    "    mu_0 = initial,  mu_t = (1 - 1/N) mu_{t-1} + x_t / N,  t = 1 .. n\n"
    "\n"
    "Loops: float32 and float64 data; N and initial are float64. The\n"
    "state is float64 for float32 data too. N >= 1; with N = inf the\n"
    "average stays at initial. An invalid N (below 1 or NaN) fills that\n"
    "series with NaN and raises the floating-point invalid flag.\n"
    "sgdprob.ema checks its arguments and raises ValueError instead.\n";

static const char warmup_mean_doc[] =
    "warmup_mean(x, N, initial, start, /, out=None, *, axes=None, ...)\n"
    "\n"
    "Raw gufunc of the warmed-up running mean, core signature\n"
    "(n),(),(),()->(n).\n"
    "\n"
    "    y_t = (1 - 1/m) y_{t-1} + x_t / m,  m = min(t, N),\n"
    "    t = start + 1 .. start + n,  y_start = initial\n"
    "\n"
    "At t = 1 the step is y_1 = x_1, so initial is ignored when start is\n"
    "0. Until t reaches N this is the plain mean of the inputs seen; from\n"
    "then on it is the exponential moving average of horizon N.\n"
    "\n"
    "Loops: float32 and float64 data; N and initial are float64 and\n"
    "start is int64. N >= 1, N = inf gives the cumulative mean. An\n"
    "invalid N (below 1 or NaN) or a negative start fills that series\n"
    "with NaN and raises the floating-point invalid flag.\n"
    "sgdprob.warmup_mean checks its arguments and raises ValueError\n"
    "instead.\n";

#define F NPY_FLOAT
#define D NPY_DOUBLE
#define I8 NPY_INT64

static gufunc_spec gufunc_table[] = {
    {"leaky_sum", "(n),(),()->(n)", 3, 1, 2,
     {leaky_sum_f, leaky_sum_d},
     {F, D, D, F,
      D, D, D, D},
     leaky_sum_doc},
    {"ema", "(n),(),()->(n)", 3, 1, 2,
     {ema_f, ema_d},
     {F, D, D, F,
      D, D, D, D},
     ema_doc},
    {"warmup_mean", "(n),(),(),()->(n)", 4, 1, 2,
     {warmup_mean_f, warmup_mean_d},
     {F, D, D, I8, F,
      D, D, D, I8, D},
     warmup_mean_doc},
    {"linear_forward", "(j,i),(b,i)->(b,j)", 2, 1, 2,
     {linear_forward_f, linear_forward_d},
     {F, F, F,
      D, D, D},
     linear_forward_doc},
    {"linear_input_grad", "(j,i),(b,j)->(b,i)", 2, 1, 2,
     {linear_input_grad_f, linear_input_grad_d},
     {F, F, F,
      D, D, D},
     linear_input_grad_doc},
    {"linear_grad", "(b,i),(b,j)->(j,i)", 2, 1, 2,
     {linear_grad_f, linear_grad_d},
     {F, F, F,
      D, D, D},
     linear_grad_doc},
    {"linear_per_sample_grad", "(b,i),(b,j)->(b,j,i)", 2, 1, 2,
     {linear_per_sample_grad_f, linear_per_sample_grad_d},
     {F, F, F,
      D, D, D},
     linear_per_sample_grad_doc},
    {"linear_grad2", "(b,i),(b,j)->(j,i)", 2, 1, 2,
     {linear_grad2_f, linear_grad2_d},
     {F, F, F,
      D, D, D},
     linear_grad2_doc},
    {"linear_moments", "(b,i),(b,j)->(j,i),(j,i)", 2, 2, 2,
     {linear_moments_f, linear_moments_d},
     {F, F, F, F,
      D, D, D, D},
     linear_moments_doc},
    {"linear_variance", "(b,i),(b,j),()->(j,i)", 3, 1, 2,
     {linear_variance_f, linear_variance_d},
     {F, F, D, F,
      D, D, D, D},
     linear_variance_doc},
    {"rmsprop_step", NULL, 7, 2, 2,
     {rmsprop_step_f, rmsprop_step_d},
     {F, F, F, F, D, D, D, F, F,
      D, D, D, D, D, D, D, D, D},
     rmsprop_step_doc},
    {"adam_step", NULL, 10, 3, 2,
     {adam_step_f, adam_step_d},
     {F, F, F, F, F, I8, D, D, D, D, F, F, F,
      D, D, D, D, D, I8, D, D, D, D, D, D, D},
     adam_step_doc},
};

#undef F
#undef D
#undef I8

/* the loops need no extra data; NumPy wants one pointer per loop */
static void *const no_data[MAX_LOOPS] = {NULL, NULL};

static int
add_gufuncs(PyObject *module)
{
    size_t count = sizeof(gufunc_table) / sizeof(gufunc_table[0]);

    for (size_t i = 0; i < count; i++) {
        gufunc_spec *g = &gufunc_table[i];
        PyObject *ufunc = PyUFunc_FromFuncAndDataAndSignature(
            g->funcs, no_data, g->types, g->ntypes, g->nin, g->nout,
            PyUFunc_None, g->name, g->doc, 0, g->signature);

        if (ufunc == NULL) {
            return -1;
        }
        if (PyModule_AddObject(module, g->name, ufunc) < 0) {
            Py_DECREF(ufunc);
            return -1;
        }
    }
    return 0;
}

static struct PyModuleDef gufuncs_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sgdprob._gufuncs",
    .m_doc = "The C kernels of sgdprob, as NumPy generalized ufuncs.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__gufuncs(void)
{
    PyObject *module;

    import_array();
    import_umath();
    if (sgdprob_linear_init() < 0) {
        return NULL;
    }

    module = PyModule_Create(&gufuncs_module);
    if (module == NULL) {
        return NULL;
    }
    if (add_gufuncs(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
