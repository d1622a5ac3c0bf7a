"""Build the C extensions of sgdprob against the NumPy 2.x C API.

sgdprob._gufuncs holds the generalized ufuncs; sgdprob._simulate the
Monte Carlo kernels, linked against NumPy's static random library
npyrandom (numpy/random/lib), whose normals are those of
numpy.random.Generator.

Set SGDPROB_WERROR=1 to turn compiler warnings into errors (CI does).
Set SGDPROB_SANITIZE=1 to build with AddressSanitizer and
UndefinedBehaviorSanitizer at -O1, with frame pointers and debug
information; any finding aborts. Such a build loads only into a Python
that has the sanitizer runtimes preloaded, as .ci/sanitize does.
"""
import os

import numpy as np
from setuptools import Extension, setup

warnings = ["-Wall", "-Wextra", "-Wshadow"]
if os.environ.get("SGDPROB_WERROR") == "1":
    warnings.append("-Werror")

optimize = ["-O3"]
link_args = []
if os.environ.get("SGDPROB_SANITIZE") == "1":
    # float-cast-overflow: a double converted to an integer it does not
    # fit, which gcc's "undefined" leaves out. -fno-sanitize-recover:
    # undefined behaviour aborts, as ASan errors do. Python's own flags
    # hold -fwrapv, under which signed overflow is defined and so not
    # checked; -fno-wrapv restores the check.
    sanitize = ["-fsanitize=address,undefined,float-cast-overflow",
                "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
                "-g"]
    optimize = ["-O1", "-fno-wrapv"] + sanitize
    link_args = sanitize

gufuncs = Extension(
    "sgdprob._gufuncs",
    sources=["csrc/_gufuncs.c", "csrc/running_average.c",
             "csrc/linear.c", "csrc/optim_step.c"],
    depends=["csrc/sgdprob.h", "csrc/running_average_impl.h",
             "csrc/linear_impl.h", "csrc/optim_step_impl.h"],
    include_dirs=[np.get_include(), "csrc"],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION"),
                   ("NPY_TARGET_VERSION", "NPY_2_0_API_VERSION")],
    extra_compile_args=optimize + ["-std=c11", "-fno-math-errno",
                                   "-ffp-contract=off"] + warnings,
    extra_link_args=link_args,
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
    extra_compile_args=optimize + ["-std=c11", "-fno-math-errno",
                                   "-ffp-contract=off"] + warnings,
    extra_link_args=link_args,
)

setup(ext_modules=[gufuncs, simulate])
