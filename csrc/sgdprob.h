/*
 * sgdprob.h -- what the kernel files share with the module that registers
 * them (_gufuncs.c).
 *
 * Every kernel is a NumPy inner loop: NumPy hands it the outer (loop)
 * dimension in dimensions[0] and the core dimensions after it; each kernel
 * file walks the outer dimension and passes each core to a plain function
 * of (length, pointer, byte stride) arguments.
 */
#ifndef SGDPROB_H
#define SGDPROB_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/ndarraytypes.h>

/* Running averages (running_average.c), core signature (n),(),()->(n)
 * for (x, N, initial) and (n),(),(),()->(n) for (x, N, initial, start). */
void leaky_sum_f(char **args, npy_intp const *dimensions,
                 npy_intp const *steps, void *data);
void leaky_sum_d(char **args, npy_intp const *dimensions,
                 npy_intp const *steps, void *data);
void ema_f(char **args, npy_intp const *dimensions,
           npy_intp const *steps, void *data);
void ema_d(char **args, npy_intp const *dimensions,
           npy_intp const *steps, void *data);
void warmup_mean_f(char **args, npy_intp const *dimensions,
                   npy_intp const *steps, void *data);
void warmup_mean_d(char **args, npy_intp const *dimensions,
                   npy_intp const *steps, void *data);

/* Linear layer (linear.c): forward (j,i),(b,i)->(b,j), input_grad
 * (j,i),(b,j)->(b,i), per_sample_grad (b,i),(b,j)->(b,j,i), grad and grad2
 * (b,i),(b,j)->(j,i), moments (b,i),(b,j)->(j,i),(j,i) and variance
 * (b,i),(b,j),()->(j,i). sgdprob_linear_init looks up the BLAS GEMM in
 * scipy.linalg.cython_blas and must succeed before any of them runs. */
int sgdprob_linear_init(void);
void linear_forward_f(char **args, npy_intp const *dimensions,
                      npy_intp const *steps, void *data);
void linear_forward_d(char **args, npy_intp const *dimensions,
                      npy_intp const *steps, void *data);
void linear_input_grad_f(char **args, npy_intp const *dimensions,
                         npy_intp const *steps, void *data);
void linear_input_grad_d(char **args, npy_intp const *dimensions,
                         npy_intp const *steps, void *data);
void linear_grad_f(char **args, npy_intp const *dimensions,
                   npy_intp const *steps, void *data);
void linear_grad_d(char **args, npy_intp const *dimensions,
                   npy_intp const *steps, void *data);
void linear_per_sample_grad_f(char **args, npy_intp const *dimensions,
                              npy_intp const *steps, void *data);
void linear_per_sample_grad_d(char **args, npy_intp const *dimensions,
                              npy_intp const *steps, void *data);
void linear_grad2_f(char **args, npy_intp const *dimensions,
                    npy_intp const *steps, void *data);
void linear_grad2_d(char **args, npy_intp const *dimensions,
                    npy_intp const *steps, void *data);
void linear_moments_f(char **args, npy_intp const *dimensions,
                      npy_intp const *steps, void *data);
void linear_moments_d(char **args, npy_intp const *dimensions,
                      npy_intp const *steps, void *data);
void linear_variance_f(char **args, npy_intp const *dimensions,
                       npy_intp const *steps, void *data);
void linear_variance_d(char **args, npy_intp const *dimensions,
                       npy_intp const *steps, void *data);
extern const char linear_forward_doc[], linear_input_grad_doc[],
    linear_grad_doc[], linear_per_sample_grad_doc[], linear_grad2_doc[],
    linear_moments_doc[], linear_variance_doc[];

/* Optimiser steps (optim_step.c), elementwise ufuncs: rmsprop_step
 * (phi, s, g, g2, eta, N, eps) -> (phi, s) and adam_step
 * (phi, m, s, g, g2, t, eta, N_g, N_s, eps) -> (phi, m, s). */
void rmsprop_step_f(char **args, npy_intp const *dimensions,
                    npy_intp const *steps, void *data);
void rmsprop_step_d(char **args, npy_intp const *dimensions,
                    npy_intp const *steps, void *data);
void adam_step_f(char **args, npy_intp const *dimensions,
                 npy_intp const *steps, void *data);
void adam_step_d(char **args, npy_intp const *dimensions,
                 npy_intp const *steps, void *data);
extern const char rmsprop_step_doc[], adam_step_doc[];

#endif
