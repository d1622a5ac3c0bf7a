"""Build the C extensions of sgdprob against the NumPy 2.x C API.

sgdprob._gufuncs holds the generalized ufuncs; sgdprob._simulate the
Monte Carlo kernels, linked against NumPy's static random library
npyrandom (numpy/random/lib), whose normals are those of
numpy.random.Generator.

Set SGDPROB_WERROR=1 to turn compiler warnings into errors (CI does).
"""
import os

import numpy as np
from setuptools import Extension, setup

warnings = ["-Wall", "-Wextra", "-Wshadow"]
if os.environ.get("SGDPROB_WERROR") == "1":
    warnings.append("-Werror")

gufuncs = Extension(
    "sgdprob._gufuncs",
    sources=["csrc/_gufuncs.c", "csrc/running_average.c",
             "csrc/linear.c", "csrc/optim_step.c"],
    depends=["csrc/sgdprob.h", "csrc/running_average_impl.h",
             "csrc/linear_impl.h", "csrc/optim_step_impl.h"],
    include_dirs=[np.get_include(), "csrc"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
                   ("NPY_TARGET_VERSION", "NPY_2_0_API_VERSION")],
    extra_compile_args=["-O3", "-std=c11", "-fno-math-errno",
                        "-ffp-contract=off"] + warnings,
)

# numpy.get_include() is numpy/_core/include; npyrandom sits in
# numpy/random/lib.
npyrandom_dir = os.path.join(os.path.dirname(os.path.dirname(
    np.get_include())), "random", "lib")

simulate = Extension(
    "sgdprob._simulate",
    sources=["csrc/simulate.c"],
    include_dirs=[np.get_include()],
    library_dirs=[npyrandom_dir],
    libraries=["npyrandom", "m"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
                   ("NPY_TARGET_VERSION", "NPY_2_0_API_VERSION")],
    extra_compile_args=["-O3", "-std=c11", "-fno-math-errno",
                        "-ffp-contract=off"] + warnings,
)

setup(ext_modules=[gufuncs, simulate])
