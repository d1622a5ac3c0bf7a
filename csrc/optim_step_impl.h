/*
 * optim_step_impl.h -- the loops of optim_step.c for one data type.
 * Included once per type with T (the C type of the parameters, state and
 * gradients) and SFX (the name suffix) defined.
 */
#define OS_CAT_(a, b) a##b
#define OS_CAT(a, b) OS_CAT_(a, b)
#define OS_FN(name) OS_CAT(name, SFX)

/* element k of operand a, read as double or stored as T */
#define OS_LD(a, k) ((double)*(const T *)(args[a] + (k) * steps[a]))
#define OS_PAR(a, k) (*(const double *)(args[a] + (k) * steps[a]))
#define OS_ST(a, k, v) (*(T *)(args[a] + (k) * steps[a]) = (T)(v))

void
OS_FN(rmsprop_step)(char **args, npy_intp const *dimensions,
                    npy_intp const *steps, void *NPY_UNUSED(data))
{
    /* phi, s, g, g2, eta, N, eps -> phi', s' */
    for (npy_intp k = 0; k < dimensions[0]; k++) {
        double phi = OS_LD(0, k), s = OS_LD(1, k);
        double g = OS_LD(2, k), g2 = OS_LD(3, k);
        double eta = OS_PAR(4, k), N = OS_PAR(5, k), eps = OS_PAR(6, k);

        if (!(N >= 1.0 && eps >= 0.0)) {
            OS_ST(7, k, NPY_NAN);
            OS_ST(8, k, NPY_NAN);
            os_flag_invalid();
            continue;
        }
        s = os_mix(s, g2, N);
        phi -= eta * g / (sqrt(s) + eps);
        OS_ST(7, k, phi);
        OS_ST(8, k, s);
    }
}

void
OS_FN(adam_step)(char **args, npy_intp const *dimensions,
                 npy_intp const *steps, void *NPY_UNUSED(data))
{
    /* phi, m, s, g, g2, t, eta, N_g, N_s, eps -> phi', m', s' */
    for (npy_intp k = 0; k < dimensions[0]; k++) {
        double phi = OS_LD(0, k), m = OS_LD(1, k), s = OS_LD(2, k);
        double g = OS_LD(3, k), g2 = OS_LD(4, k);
        npy_int64 t = *(const npy_int64 *)(args[5] + k * steps[5]);
        double eta = OS_PAR(6, k), Ng = OS_PAR(7, k), Ns = OS_PAR(8, k);
        double eps = OS_PAR(9, k), tt = (double)t;

        if (!(t >= 1 && Ng >= 1.0 && Ns >= 1.0 && eps >= 0.0)) {
            OS_ST(10, k, NPY_NAN);
            OS_ST(11, k, NPY_NAN);
            OS_ST(12, k, NPY_NAN);
            os_flag_invalid();
            continue;
        }
        m = os_mix(m, g, tt < Ng ? tt : Ng);
        s = os_mix(s, g2, tt < Ns ? tt : Ns);
        phi -= eta * m / (sqrt(s) + eps);
        OS_ST(10, k, phi);
        OS_ST(11, k, m);
        OS_ST(12, k, s);
    }
}

#undef OS_LD
#undef OS_PAR
#undef OS_ST
#undef OS_FN
#undef OS_CAT
#undef OS_CAT_
