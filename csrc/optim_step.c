/*
 * optim_step.c -- one step of RMSProp and of Adam, as elementwise ufuncs.
 *
 *   rmsprop_step  phi, s, g, g2, eta, N, eps -> phi', s'
 *       s'   = (1 - 1/N) s + g2 / N
 *       phi' = phi - eta g / (sqrt(s') + eps)
 *   adam_step     phi, m, s, g, g2, t, eta, N_g, N_s, eps -> phi', m', s'
 *       a = min(t, N_g),  c = min(t, N_s),  t = 1, 2, ...
 *       m'   = (1 - 1/a) m + g / a
 *       s'   = (1 - 1/c) s + g2 / c
 *       phi' = phi - eta m' / (sqrt(s') + eps)
 *
 * g is the gradient averaged over the batch and g2 the batch mean of the
 * squared per-sample gradients (W.grad and W.grad2 of a linear layer).
 * The running means of adam_step are warmup_mean's: the plain mean of
 * the steps so far until t reaches the horizon, so no bias correction is
 * needed. A horizon of 1 (and t = 1 in adam_step) takes the new value as
 * it is, whatever the old state held.
 *
 * Arithmetic is in double; float32 results are rounded once at the
 * store. Every output element is computed from its inputs before it is
 * stored, so out= may name the inputs (an update in place).
 *
 * An invalid parameter (N below 1 or NaN, t below 1, eps negative or
 * NaN) gives NaN outputs for that element and raises the floating-point
 * invalid flag. sgdprob.rmsprop_step and sgdprob.adam_step check their
 * parameters and raise ValueError instead.
 */
#include "sgdprob.h"

#include <fenv.h>
#include <math.h>

#include <numpy/npy_math.h>

/* (1 - 1/n) old + x / n, and x itself when n = 1 */
static inline double
os_mix(double old,      /* running mean so far */
       double x,        /* new value */
       double n)        /* horizon, >= 1 */
{
    if (n == 1.0) {
        return x;
    }
    return (1.0 - 1.0 / n) * old + x / n;
}

static void
os_flag_invalid(void)
{
    feraiseexcept(FE_INVALID);
}

#define T float
#define SFX _f
#include "optim_step_impl.h"
#undef T
#undef SFX

#define T double
#define SFX _d
#include "optim_step_impl.h"
#undef T
#undef SFX

const char rmsprop_step_doc[] =
    "rmsprop_step(phi, s, g, g2, eta, N, eps, /, out=(None, None), ...)\n"
    "\n"
    "Raw ufunc of one RMSProp step, elementwise:\n"
    "\n"
    "    s'   = (1 - 1/N) s + g2 / N\n"
    "    phi' = phi - eta g / (sqrt(s') + eps)\n"
    "\n"
    "returns (phi', s'). Loops: phi, s, g, g2 float32 or float64; eta,\n"
    "N and eps float64; arithmetic in double. An invalid N (below 1 or\n"
    "NaN) or eps (negative or NaN) gives NaN and raises the floating-\n"
    "point invalid flag. sgdprob.rmsprop_step checks its arguments and\n"
    "raises ValueError instead; prefer it.\n";

const char adam_step_doc[] =
    "adam_step(phi, m, s, g, g2, t, eta, N_g, N_s, eps, /,\n"
    "          out=(None, None, None), ...)\n"
    "\n"
    "Raw ufunc of one Adam step with warmed-up running means,\n"
    "elementwise, t = 1, 2, ...:\n"
    "\n"
    "    m'   = (1 - 1/a) m + g / a,    a = min(t, N_g)\n"
    "    s'   = (1 - 1/c) s + g2 / c,   c = min(t, N_s)\n"
    "    phi' = phi - eta m' / (sqrt(s') + eps)\n"
    "\n"
    "returns (phi', m', s'). Loops: phi, m, s, g, g2 float32 or float64;\n"
    "t int64; eta, N_g, N_s, eps float64; arithmetic in double. An\n"
    "invalid parameter (a horizon below 1 or NaN, t below 1, eps negative\n"
    "or NaN) gives NaN and raises the floating-point invalid flag.\n"
    "sgdprob.adam_step checks its arguments and raises ValueError\n"
    "instead; prefer it.\n";
