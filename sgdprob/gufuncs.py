"""The raw generalized ufuncs of sgdprob.

These are real ``np.ufunc`` objects written in C; their ``.signature`` and
``.types`` show the core signature and the loops they have. They follow
every ufunc convention (``out=``, ``axes=``, broadcasting of the loop
dimensions, ``__array_ufunc__`` dispatch), and do no Python-side argument
checking: an invalid parameter gives NaN and the floating-point invalid
flag, as each docstring says. The functions of the same names in
:mod:`sgdprob` check their arguments, choose the output layout and are the
recommended interface.

========== ===================== =====================================
gufunc     core signature        operands
========== ===================== =====================================
leaky_sum  ``(n),(),()->(n)``    x, N, initial -> y
ema        ``(n),(),()->(n)``    x, N, initial -> mu
warmup_mean ``(n),(),(),()->(n)`` x, N, initial, start -> y
========== ===================== =====================================
"""
from ._gufuncs import ema, leaky_sum, warmup_mean

__all__ = ["leaky_sum", "ema", "warmup_mean"]
