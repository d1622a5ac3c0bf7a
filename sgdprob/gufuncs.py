"""The raw generalized ufuncs of sgdprob.

These are real ``np.ufunc`` objects written in C; their ``.signature`` and
``.types`` show the core signature and the loops they have. They follow
every ufunc convention (``out=``, ``axes=``, broadcasting of the loop
dimensions, ``__array_ufunc__`` dispatch), and do no Python-side argument
checking: an invalid parameter gives NaN and the floating-point invalid
flag, as each docstring says. An output may share memory with an input:
NumPy copies such an input first, except when it is the very same array
as the output, which the loops then copy themselves. One case is beyond
them: the very same array as input and output with ``axes=`` that place
their core dimensions differently and leave two or more loop
dimensions; NumPy then hands the loops parts of it in several calls,
none of which sees the whole, so pass a copy as the input there. The functions of the same names in
:mod:`sgdprob` check their arguments, choose the output layout and are the
recommended interface.

=========== ========================= =====================================
gufunc      core signature            operands
=========== ========================= =====================================
leaky_sum   ``(n),(),()->(n)``        x, N, initial -> y
ema         ``(n),(),()->(n)``        x, N, initial -> mu
warmup_mean ``(n),(),(),()->(n)``     x, N, initial, start -> y
=========== ========================= =====================================

The linear layer ``y[b, j] = sum_i W[j, i] x[b, i]`` (see
:mod:`sgdprob.linear`):

====================== ============================ ======================
gufunc                 core signature               operands
====================== ============================ ======================
linear_forward         ``(j,i),(b,i)->(b,j)``       W, x -> y
linear_input_grad      ``(j,i),(b,j)->(b,i)``       W, ygrad -> x.grad
linear_grad            ``(b,i),(b,j)->(j,i)``       x, ygrad -> W.grad
linear_per_sample_grad ``(b,i),(b,j)->(b,j,i)``     x, ygrad -> W.grad[b]
linear_grad2           ``(b,i),(b,j)->(j,i)``       x, ygrad -> W.grad2
linear_moments         ``(b,i),(b,j)->(j,i),(j,i)`` x, ygrad -> both
linear_variance        ``(b,i),(b,j),()->(j,i)``    x, ygrad, ddof -> var
====================== ============================ ======================

Elementwise ufuncs of one optimiser step: ``rmsprop_step`` (phi, s, g,
g2, eta, N, eps -> phi, s) and ``adam_step`` (phi, m, s, g, g2, t, eta,
N_g, N_s, eps -> phi, m, s).
"""
from ._gufuncs import adam_step, rmsprop_step
from ._gufuncs import ema, leaky_sum, warmup_mean
from ._gufuncs import (linear_forward, linear_grad, linear_grad2,
                       linear_input_grad, linear_moments,
                       linear_per_sample_grad, linear_variance)

__all__ = ["leaky_sum", "ema", "warmup_mean",
           "linear_forward", "linear_input_grad", "linear_grad",
           "linear_per_sample_grad", "linear_grad2", "linear_moments",
           "linear_variance", "rmsprop_step", "adam_step"]
