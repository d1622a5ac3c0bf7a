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

#endif
