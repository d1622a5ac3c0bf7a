"""sgdprob: the mathematics of SGD as fast, verified NumPy gufuncs.

Running averages (a course's Problems 1 and 2 on SGD):

- :func:`leaky_sum`   y_t = (1 - 1/N) y_{t-1} + x_t
- :func:`ema`         mu_t = (1 - 1/N) mu_{t-1} + x_t / N
- :func:`warmup_mean` the same with 1/min(t, N): a mean that warms up

:mod:`sgdprob.linear` has the gradients of a linear layer and the moments
of its per-sample gradients (W.grad, W.grad2, their variance and the
gradient noise scale) without the per-sample array; :func:`rmsprop_step`
and :func:`adam_step` take one optimiser step with that second moment,
which keeps its meaning at every batch size (Problem 3).

:mod:`sgdprob.gufuncs` holds the raw C gufuncs, :mod:`sgdprob.analytic`
the closed forms they are checked against, and ``python -m sgdprob``
prints a report that checks them.

Monte Carlo runs of SGD and its Langevin model (a course's Problem 4 on
SGD), in C with NumPy's random generators:

- :func:`batch_noise_cov`    the covariance of minibatch mean gradients,
  measured: ``Sigma^B = Sigma^1 / B``
- :func:`sgd_quadratic`      SGD on ``1/2 Phi^T H Phi`` with gradient noise
- :func:`langevin`           its Langevin model, by Euler-Maruyama
- :func:`sgd_least_squares`  SGD on a data set, with the data's own noise
"""
try:
    from . import _gufuncs  # noqa: F401
except ImportError as exc:      # a source checkout that was never built
    import os as _os
    raise ImportError(
        f"sgdprob was imported from {_os.path.dirname(__file__)}, which "
        "holds no compiled extension: this is probably the source folder, "
        "put on sys.path by running Python from the repository root. "
        "Run from another folder, or build in place with "
        "`pip install -e .`.") from exc

from . import analytic, gufuncs, linear
from ._montecarlo import (batch_noise_cov, langevin, sgd_least_squares,
                          sgd_quadratic)
from ._optim import adam_step, rmsprop_step
from ._running import ema, leaky_sum, warmup_mean

__version__ = "0.1.0"

__all__ = ["leaky_sum", "ema", "warmup_mean", "analytic", "gufuncs",
           "linear", "rmsprop_step", "adam_step", "batch_noise_cov",
           "sgd_quadratic", "langevin", "sgd_least_squares"]
