"""Monte Carlo runs of SGD and of its Langevin model (C kernels).

SGD with learning rate ``eta`` and batch size ``B`` steps

    Phi <- Phi - eta g^B,        g^B = (1/B) sum_b g_b,

where ``g_1 .. g_B`` are gradients of B sampled examples. Their mean
``g = E g^B`` is the true gradient, and if ``Sigma^1`` is the covariance
of one sampled gradient, the B independent samples average to

    Sigma^B = Sigma^1 / B.

The Langevin model of SGD, ``Phi(t + dt) = Phi(t) - g dt + eps sqrt(dt)``
with ``eps ~ N(0, eta Sigma^B)``, therefore has noise ``eta Sigma^1 / B
= eta' Sigma^1``: with ``eta = B eta'`` it depends on the learning rate
per sample ``eta'`` alone, not on B. One SGD step advances model time by
``eta``, so model time is ``eta'`` times the number of samples seen.

- :func:`batch_noise_cov`   measure ``Sigma^B`` on per-sample gradients
- :func:`sgd_quadratic`     SGD on ``1/2 Phi^T H Phi`` with Gaussian noise
- :func:`langevin`          Euler-Maruyama runs of the Langevin model
- :func:`sgd_least_squares` SGD on a real data set, its own noise

The closed forms they are checked against are in :mod:`sgdprob.analytic`.
"""
import collections
import threading
import warnings

import numpy as np

from . import _quadratic, _simulate

__all__ = ["batch_noise_cov", "BatchNoiseCov", "sgd_quadratic", "langevin",
           "sgd_least_squares"]

# Time / dt must be this close to a whole number of steps.
_WHOLE_STEPS = 1e-9
# A progress bar advances about this many times over a run.
_TICKS = 100

_RNG_RULE = """\
    rng : None, int, SeedSequence or numpy.random.Generator, optional
        Source of randomness, as ``np.random.default_rng(rng)`` reads
        it: a Generator is used (and advanced) as it is."""

_RECORD_RULE = """\
    record_every : int, optional
        If given (``k``), return the states after steps ``0, k, 2k, ...``
        instead of the final states only. All steps are taken; the final
        state is among the records when ``k`` divides the number of
        steps.
    progress : bool, optional
        Show a progress bar (tqdm, which is then needed: ``pip install
        tqdm``). Default False."""

_INTERRUPT_RULE = """\
    The loop runs in C without the GIL, so other Python threads go on
    meanwhile. Ctrl-C (or a Jupyter interrupt) stops a run in the main
    thread within a few tens of milliseconds with KeyboardInterrupt; the
    Generator has then advanced by the draws made. The Generator's lock
    is held for the whole run, so another thread drawing from the same
    Generator waits."""

BatchNoiseCov = collections.namedtuple("BatchNoiseCov", ["cov", "stderr"])
BatchNoiseCov.__doc__ = """\
The covariance of minibatch mean gradients, measured, and its standard
error.

cov : ndarray, shape (d, d)
    Sample covariance (``ddof=1``) of the batch means.
stderr : ndarray, shape (d, d)
    Standard error of each entry of `cov`.
"""


def _generator(rng):
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"rng must be None, a non-negative int, a SeedSequence or a "
            f"Generator, not {rng!r}: {exc}") from None


def _poll():
    """Whether a kernel should check for signals: only the main thread
    runs signal handlers, and checking costs the GIL."""
    return threading.current_thread() is threading.main_thread()


def _progress_bar(total, desc):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError(
            "progress=True shows a tqdm progress bar: pip install tqdm "
            "(or sgdprob[progress])") from None
    return tqdm(total=total, desc=desc, unit="step")


def _record_every(value):
    if value is None:
        return None
    return _quadratic.count(value, "record_every")


def _drive(advance, state, steps, record_every, progress, desc):
    """Call advance(n) until steps steps are done; snapshot state.

    advance(n) takes n steps in place on state. Returns the states after
    steps 0, k, 2k, ... (k = record_every) stacked, or None.
    """
    records = None
    if record_every is not None:
        records = np.empty((steps // record_every + 1,) + state.shape)
        records[0] = state
    piece = max(1, -(-steps // _TICKS)) if progress else steps
    bar = _progress_bar(steps, desc) if progress else None
    done = 0
    try:
        while done < steps:
            stop = min(steps, done + piece)
            if record_every is not None:
                stop = min(stop, (done // record_every + 1) * record_every)
            advance(stop - done)
            if bar is not None:
                bar.update(stop - done)
            done = stop
            if record_every is not None and done % record_every == 0:
                records[done // record_every] = state
    finally:
        if bar is not None:
            bar.close()
    return records


def _start(phi0, replicas, d, name="phi0"):
    """phi0 (scalar, (d,) or (replicas, d)) as a new (replicas, d) array."""
    phi0 = _quadratic.real_array(phi0, name)
    if phi0.ndim > 2 or (phi0.ndim >= 1 and phi0.shape[-1] != d) or (
            phi0.ndim == 2 and phi0.shape[0] != replicas):
        raise ValueError(
            f"{name} must be a scalar, a ({d},) vector or a ({replicas}, "
            f"{d}) array (replicas, d); got shape {phi0.shape}")
    return np.array(np.broadcast_to(phi0, (replicas, d)), dtype=np.float64,
                    order="C")


def _warn_divergent(rate, lam, rate_name, what):
    """Warn if rate * lam outside [0, 2): the recursion blows up.

    An eigenvalue below 0 by no more than d eps times the largest
    magnitude is the rounding of a zero one (a semi-definite H such as
    A A^T): it multiplies the state by 1 + O(eps) a step, no divergence.
    """
    top = rate * lam[-1]
    floor = len(lam) * np.finfo(float).eps * np.abs(lam).max()
    if top >= 2:
        warnings.warn(
            f"{rate_name} * largest eigenvalue of H = {top:.6g} >= 2: "
            f"{what} diverges", RuntimeWarning, stacklevel=3)
    elif lam[0] < -floor:
        warnings.warn(
            f"H has a negative eigenvalue {lam[0]:.6g}: {what} diverges "
            f"along its eigenvector", RuntimeWarning, stacklevel=3)


def _linear_gaussian(Q, a, M, B, phi0, steps, rng, record_every, progress,
                     desc):
    """Run psi <- a psi + M (z_1 + .. + z_B) in the eigenbasis Q of H.

    phi0 is (replicas, d); returns final states (replicas, d) or records
    (n, replicas, d) in the original basis.
    """
    psi = np.ascontiguousarray((phi0 @ Q).T)         # (d, replicas)
    a = np.ascontiguousarray(a, dtype=np.float64)
    M = np.ascontiguousarray(M, dtype=np.float64)
    bit_generator = _generator(rng).bit_generator
    capsule = bit_generator.capsule
    poll = _poll()

    def advance(n):
        _simulate.linear_gaussian_steps(capsule, a, M, B, psi, n, poll)

    with bit_generator.lock:
        records = _drive(advance, psi, steps, record_every, progress, desc)
    # a divergent run (already warned about) may hold inf: stay quiet
    with np.errstate(invalid="ignore", over="ignore"):
        if records is None:
            return np.ascontiguousarray((Q @ psi).T)
        return np.ascontiguousarray(
            np.matmul(Q, records).transpose(0, 2, 1))


def batch_noise_cov(per_sample_grads, B, *, n_batches, replace=True,
                    rng=None):
    """Covariance of minibatch mean gradients, measured by sampling.

    Draws `n_batches` minibatches of `B` rows of `per_sample_grads`,
    averages each, and returns the sample covariance of the averages:
    ``Sigma^B`` seen rather than assumed.

    Parameters
    ----------
    per_sample_grads : array_like, shape (n, d)
        One gradient per example, e.g. from
        :func:`sgdprob.datasets.least_squares_grads` or
        :func:`sgdprob.linear.per_sample_grad` (reshaped to (n, d)).
    B : int
        Batch size, >= 1; at most ``n`` without replacement.
    n_batches : int
        Minibatches to draw, >= 2 (a covariance needs two). `stderr` is
        meaningful only from about 100 batches on (see Notes).
    replace : bool, optional
        Draw the rows of a batch with replacement (True, the default) or
        as B distinct rows. The batches are independent either way.
{rng}

    Returns
    -------
    BatchNoiseCov
        Named tuple ``(cov, stderr)``, both (d, d): the sample covariance
        (``ddof=1``) of the batch means and the standard error of each
        entry.

    Raises
    ------
    ValueError
        If `per_sample_grads` is not (n, d) or not finite, `B` or
        `n_batches` is too small or not below 2**63, or ``B > n``
        without replacement.
    TypeError
        If an argument is not a number or array of numbers.
    MemoryError
        If the `B` row numbers of a batch, or the batch means, do not
        fit in memory.

    Notes
    -----
    With ``Sigma^1`` the covariance of one row (``ddof=0``, the rows
    being the whole population), the expected value of `cov` is

        ``Sigma^1 / B``                          with replacement
        ``Sigma^1 / B * (n - B) / (n - 1)``      without replacement

    (the second is the finite-population correction; it vanishes at
    ``B = n``, where every batch is the whole set).

    `stderr` treats the products ``(m_k[i] - mbar[i]) (m_k[j] -
    mbar[j])`` of the K batch means ``m_k`` as K independent values and
    gives the standard error of their mean: ``sqrt(var / K)``, the usual
    estimate for large K. For small K it means little: at ``K = 2``
    the two deviations are opposite, every product is the same and
    `stderr` is 0 up to rounding, and below about ``K = 30`` it is
    biased low (by about a quarter at ``K = 10``). It is itself a
    random estimate: for normal batch means its relative spread is
    about ``sqrt(3.5 / K)`` on the diagonal and ``sqrt(2 / K)`` off it
    (from the fourth moments of a normal), so from ``K = 100`` on it
    is good to about 20 %, and a test at five standard errors wants K
    of a thousand or more.

    Rows are drawn as in :func:`sgd_least_squares`: with replacement,
    batch k is ``rng.integers(0, n, size=B)`` in turn; without, a
    partial Fisher-Yates shuffle (see that function).

    Examples
    --------
    >>> import numpy as np
    >>> import sgdprob
    >>> G = np.random.default_rng(1).standard_normal((1000, 2))
    >>> Sigma1 = np.cov(G.T, ddof=0)
    >>> cov, se = sgdprob.batch_noise_cov(G, 10, n_batches=20000, rng=2)
    >>> bool(np.all(np.abs(cov - Sigma1 / 10) < 5 * se))
    True
    """
    G = _quadratic.real_array(per_sample_grads, "per_sample_grads")
    if G.ndim != 2 or G.shape[0] == 0:
        raise ValueError(
            "per_sample_grads must be (n, d) with n >= 1, one row per "
            f"example; got shape {G.shape}")
    n, d = G.shape
    B = _quadratic.count(B, "B")
    K = _quadratic.count(n_batches, "n_batches", least=2)
    replace = _flag(replace, "replace")
    if not replace and B > n:
        raise ValueError(
            f"B = {B} is larger than the data set (n = {n}); without "
            f"replacement a batch holds distinct rows")
    G = np.ascontiguousarray(G)
    means = np.empty((K, d))
    bit_generator = _generator(rng).bit_generator
    with bit_generator.lock:
        _simulate.batch_means(bit_generator.capsule, G, B, replace, means,
                              _poll())

    dev = means - means.mean(axis=0)
    m1 = dev.T @ dev / K
    cov = m1 * (K / (K - 1))
    m2 = (dev ** 2).T @ (dev ** 2) / K
    var = np.clip(m2 - m1 ** 2, 0.0, None) * (K / (K - 1))
    return BatchNoiseCov((cov + cov.T) / 2, np.sqrt(var / K))


def _flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return bool(value)


def sgd_quadratic(H, Sigma1, *, eta, B, steps, replicas, phi0=0.0,
                  rng=None, record_every=None, progress=False):
    """SGD on a quadratic loss with Gaussian per-sample gradient noise.

    Runs `replicas` independent copies of

        ``Phi <- Phi - eta (1/B) sum_b (H Phi + xi_b)``,
        ``xi_b = Sigma1^(1/2) z_b``,  ``z_b ~ N(0, I)``,

    SGD on ``L(Phi) = 1/2 Phi^T H Phi`` where each of the B sampled
    gradients carries its own noise of covariance `Sigma1`.

    Parameters
    ----------
    H : array_like, shape (d, d)
        Hessian, symmetric (a scalar is a 1 x 1 matrix).
    Sigma1 : array_like, shape (d, d)
        Covariance of one per-sample gradient, symmetric positive
        semi-definite.
    eta : float
        Learning rate, > 0.
    B : int
        Batch size, >= 1.
    steps : int
        SGD steps, >= 1.
    replicas : int
        Independent runs, >= 1.
    phi0 : float or array_like, optional
        Start: a scalar (every coordinate), a (d,) vector or a
        (replicas, d) array. Default 0.
{rng}
{record}

    Returns
    -------
    phi : ndarray, shape (replicas, d), or (steps // k + 1, replicas, d)
        Final states, or the recorded ones with ``record_every=k``.

    Raises
    ------
    ValueError
        If a matrix is not square, symmetric or finite, `Sigma1` is not
        positive semi-definite, a shape disagrees, a count or `eta`
        is not positive, or a count is not below 2**63.
    TypeError
        If an argument is not a number or array of numbers.
    MemoryError
        If the ``B d`` normals of one replica's step, or the states, do
        not fit in memory.

    Warns
    -----
    RuntimeWarning
        If ``eta`` times the largest eigenvalue of `H` is at least 2, or
        `H` has a negative eigenvalue: SGD then diverges.

    Notes
    -----
    The batch mean of the noise, ``(1/B) sum_b xi_b``, has covariance
    ``Sigma1 / B``; the run shows that, it is not an input. All B d
    normals of every step are drawn, in the order of
    ``rng.standard_normal((steps, replicas, B, d))`` (C order: step,
    replica, sample, coordinate) and with the same values, so one run
    can be replayed in NumPy::

        Z = rng.standard_normal((steps, replicas, B, d))
        S = scipy.linalg.sqrtm(Sigma1)        # the symmetric root
        for k in range(steps):
            phi = phi - eta * (phi @ H + Z[k].mean(axis=1) @ S)

    The C loop takes the same steps in the eigenbasis ``H = Q diag(lam)
    Q^T``, where one step is ``psi <- (1 - eta lam) psi - (eta / B)
    Q^T Sigma1^(1/2) sum_b z_b``: the normals of a sample are summed
    first and multiplied by a d x d matrix once per step, so a run
    costs little more than drawing its normals. It agrees with the loop
    above to rounding. `Sigma1` may be singular: its root is
    ``V diag(sqrt(w)) V^T`` from its eigendecomposition.

    The stationary covariance, for ``0 < eta lam < 2``, is
    :func:`sgdprob.analytic.sgd_stationary_cov`; in one dimension
    ``eta sigma^2 / (B h (2 - eta h))``.

{interrupt}

    Examples
    --------
    >>> import numpy as np
    >>> import sgdprob
    >>> from sgdprob import analytic
    >>> phi = sgdprob.sgd_quadratic(1.0, 4.0, eta=0.1, B=2, steps=200,
    ...                             replicas=20000, rng=0)
    >>> phi.shape
    (20000, 1)
    >>> theory = analytic.sgd_stationary_cov(1.0, 4.0, eta=0.1, B=2)
    >>> round(float(theory[0, 0]), 6)      # 0.1 * 4 / (2 * 1 * 1.9)
    0.105263
    >>> bool(abs(phi.var() / theory[0, 0] - 1) < 0.05)
    True
    """
    lam, Q = _quadratic.hessian(H)
    d = lam.shape[0]
    root = _quadratic.noise_sqrt(_quadratic.noise(Sigma1, d))
    eta = _quadratic.positive(eta, "eta")
    B = _quadratic.count(B, "B")
    steps = _quadratic.count(steps, "steps")
    replicas = _quadratic.count(replicas, "replicas")
    phi0 = _start(phi0, replicas, d)
    record_every = _record_every(record_every)
    _flag(progress, "progress")
    _warn_divergent(eta, lam, "eta", "SGD")

    a = 1.0 - eta * lam
    M = -(eta / B) * (Q.T @ root)
    return _linear_gaussian(Q, a, M, B, phi0, steps, rng, record_every,
                            progress, "SGD")


def _steps_of(time, dt):
    time = _quadratic.positive(time, "time")
    dt = _quadratic.positive(dt, "dt")
    ratio = time / dt
    if not ratio < 2.0 ** 63:
        raise ValueError(
            f"time / dt = {ratio!r} steps is too many: the steps are "
            f"counted in 64-bit integers, below 2**63")
    steps = round(ratio)
    if abs(ratio - steps) > _WHOLE_STEPS:
        raise ValueError(
            f"time / dt = {ratio!r} must be a whole number of steps")
    if steps < 1:
        raise ValueError(f"time = {time!r} must be at least dt = {dt!r}")
    return steps, dt


def langevin(H, Sigma1, *, eta, B, time, dt, replicas, phi0=0.0, rng=None,
             record_every=None, progress=False):
    """The Langevin model of SGD on a quadratic, by Euler-Maruyama.

    Runs `replicas` independent copies of

        ``dPhi = -H Phi dt + (eta Sigma1 / B)^(1/2) dW``

    over ``round(time / dt)`` steps of

        ``Phi <- Phi - H Phi dt + sqrt(eta dt / B) Sigma1^(1/2) z``,
        ``z ~ N(0, I)``.

    Parameters
    ----------
    H : array_like, shape (d, d)
        Hessian, symmetric (a scalar is a 1 x 1 matrix).
    Sigma1 : array_like, shape (d, d)
        Covariance of one per-sample gradient, symmetric positive
        semi-definite.
    eta : float
        Learning rate of the SGD being modelled, > 0.
    B : int
        Its batch size, >= 1.
    time : float
        Model time to run, > 0; ``time / dt`` must be within 1e-9 of a
        whole number.
    dt : float
        Time step, > 0.
    replicas : int
        Independent runs, >= 1.
    phi0 : float or array_like, optional
        Start: a scalar, a (d,) vector or a (replicas, d) array.
        Default 0.
{rng}
{record}

    Returns
    -------
    phi : ndarray, shape (replicas, d), or (steps // k + 1, replicas, d)
        States at `time`, or at times ``0, k dt, 2k dt, ...`` with
        ``record_every=k``.

    Raises
    ------
    ValueError
        If a matrix is not square, symmetric or finite, `Sigma1` is not
        positive semi-definite, a shape disagrees, a count, `eta`,
        `time` or `dt` is not positive, a count is not below 2**63, or
        `time` is not a whole number (below 2**63) of steps `dt`.
    TypeError
        If an argument is not a number or array of numbers.

    Warns
    -----
    RuntimeWarning
        If ``dt`` times the largest eigenvalue of `H` is at least 2 (the
        scheme diverges) or `H` has a negative eigenvalue.

    Notes
    -----
    The noise ``eta Sigma1 / B`` depends on ``eta / B`` only: with
    ``eta = B eta'`` every batch size gives the same dynamics. The
    normals drawn do not depend on `B` either (one d-vector per step and
    replica, in the order of ``rng.standard_normal((steps, replicas,
    d))``), so runs with ``eta = B eta'`` for different `B` and the same
    seed give the same paths, to rounding. One replica can be replayed
    in NumPy::

        Z = rng.standard_normal((steps, replicas, d))
        S = scipy.linalg.sqrtm(Sigma1)
        for k in range(steps):
            phi = phi - dt * phi @ H + np.sqrt(eta * dt / B) * Z[k] @ S

    The C loop takes the same steps in the eigenbasis of `H` and agrees
    to rounding.

    Closed forms: :func:`sgdprob.analytic.langevin_transient` (mean and
    covariance at time t), :func:`sgdprob.analytic.langevin_stationary_cov`
    (``H C + C H = eta Sigma1 / B``) and, for the scheme itself at step
    `dt`, :func:`sgdprob.analytic.euler_maruyama_stationary_cov`.

{interrupt}

    Examples
    --------
    >>> import numpy as np
    >>> import sgdprob
    >>> a = sgdprob.langevin(1.0, 4.0, eta=0.1, B=1, time=5.0, dt=0.01,
    ...                      replicas=3, rng=7)
    >>> b = sgdprob.langevin(1.0, 4.0, eta=0.8, B=8, time=5.0, dt=0.01,
    ...                      replicas=3, rng=7)
    >>> bool(np.allclose(a, b, rtol=1e-12, atol=1e-12))  # eta' = 0.1
    True
    """
    lam, Q = _quadratic.hessian(H)
    d = lam.shape[0]
    root = _quadratic.noise_sqrt(_quadratic.noise(Sigma1, d))
    eta = _quadratic.positive(eta, "eta")
    B = _quadratic.count(B, "B")
    steps, dt = _steps_of(time, dt)
    replicas = _quadratic.count(replicas, "replicas")
    phi0 = _start(phi0, replicas, d)
    record_every = _record_every(record_every)
    _flag(progress, "progress")
    _warn_divergent(dt, lam, "dt", "the Euler-Maruyama scheme")

    a = 1.0 - dt * lam
    M = np.sqrt(eta * dt / B) * (Q.T @ root)
    return _linear_gaussian(Q, a, M, 1, phi0, steps, rng, record_every,
                            progress, "Langevin")


def sgd_least_squares(X, y, *, eta, B, steps, replicas, phi0=None,
                      replace=True, rng=None, record_every=None,
                      progress=False):
    """SGD on the least-squares loss of a data set.

    Runs `replicas` independent copies of SGD on

        ``L(Phi) = (1/2n) sum_r (x_r . Phi - y_r)^2``,

    each step sampling B rows ``r_1 .. r_B``:

        ``Phi <- Phi - (eta / B) sum_b (x_rb . Phi - y_rb) x_rb``.

    The gradient noise is the data's own: no model of it is assumed.

    Parameters
    ----------
    X : array_like, shape (n, p)
        Features, one row per example. For an intercept append a column
        of ones.
    y : array_like, shape (n,)
        Responses.
    eta : float
        Learning rate, > 0.
    B : int
        Batch size, >= 1; at most ``n`` without replacement.
    steps : int
        SGD steps, >= 1.
    replicas : int
        Independent runs, >= 1.
    phi0 : float or array_like, optional
        Start: a scalar, a (p,) vector or a (replicas, p) array. None
        (the default) starts at 0.
    replace : bool, optional
        Sample the rows of a batch with replacement (True, the default)
        or B distinct rows.
{rng}
{record}

    Returns
    -------
    phi : ndarray, shape (replicas, p), or (steps // k + 1, replicas, p)
        Final states, or the recorded ones with ``record_every=k``.

    Raises
    ------
    ValueError
        If `X` is not (n, p) with ``n, p >= 1``, `y` not (n,), an input
        is not finite, a count or `eta` is not positive, a count is not
        below 2**63, a shape disagrees, or ``B > n`` without
        replacement.
    TypeError
        If an argument is not a number or array of numbers.
    MemoryError
        If the `B` row numbers of a batch, or the states, do not fit in
        memory.

    Warns
    -----
    RuntimeWarning
        If ``eta`` times the largest eigenvalue of ``X^T X / n`` is at
        least 2: SGD diverges (smaller batches can diverge at smaller
        ``eta``, since single rows curve more than their mean).

    Notes
    -----
    Rows are drawn step by step, replica by replica. With replacement
    the rows of one step and replica are ``rng.integers(0, n, size=B)``
    (the same numbers), so the whole run's rows are
    ``rng.integers(0, n, size=(steps, replicas, B))``. Without
    replacement each batch is a partial Fisher-Yates shuffle of
    ``0 .. n-1``::

        perm = np.arange(n)
        for b in range(B):
            j = b + rng.integers(0, n - b)
            perm[b], perm[j] = perm[j], perm[b]
        rows = perm[:B]

    starting from ``0 .. n-1`` for every batch.

    Near the optimum ``Phi*`` the gradient noise has covariance
    ``Sigma1``, that of the per-sample gradients at ``Phi*``, and the
    Langevin model predicts the stationary covariance
    :func:`sgdprob.analytic.mandt_stationary_cov` (Mandt, Hoffman and
    Blei 2017), which is exact as ``eta -> 0``.

{interrupt}

    Examples
    --------
    >>> import numpy as np
    >>> import sgdprob
    >>> from sgdprob.datasets import load_diabetes
    >>> X, y, names = load_diabetes()
    >>> X1 = np.column_stack([X[:, [2, 3, 8]], np.ones(len(y))])
    >>> phi = sgdprob.sgd_least_squares(X1, y, eta=0.01, B=16, steps=2000,
    ...                                 replicas=4, rng=0)
    >>> phi.shape
    (4, 4)
    >>> best = np.linalg.lstsq(X1, y, rcond=None)[0]
    >>> bool(np.all(np.abs(phi - best) < 10))
    True
    """
    X = _quadratic.real_array(X, "X")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"X must be (n, p) with n, p >= 1; got shape {X.shape}")
    n, p = X.shape
    y = _quadratic.real_array(y, "y")
    if y.shape != (n,):
        raise ValueError(
            f"y must be ({n},), one response per row of X; got shape "
            f"{y.shape}")
    eta = _quadratic.positive(eta, "eta")
    B = _quadratic.count(B, "B")
    steps = _quadratic.count(steps, "steps")
    replicas = _quadratic.count(replicas, "replicas")
    replace = _flag(replace, "replace")
    if not replace and B > n:
        raise ValueError(
            f"B = {B} is larger than the data set (n = {n}); without "
            f"replacement a batch holds distinct rows")
    phi = _start(0.0 if phi0 is None else phi0, replicas, p)
    record_every = _record_every(record_every)
    _flag(progress, "progress")
    # X^T X / n is positive semi-definite: a negative eigenvalue is the
    # rounding of a zero one (collinear columns), along which SGD does
    # not move at all (every gradient lies in the row space of X).
    lam = np.clip(np.linalg.eigvalsh(X.T @ X / n), 0.0, None)
    _warn_divergent(eta, lam, "eta", "SGD")

    X = np.ascontiguousarray(X)
    bit_generator = _generator(rng).bit_generator
    capsule = bit_generator.capsule
    poll = _poll()

    def advance(k):
        _simulate.least_squares_steps(capsule, X, y, eta, B, replace, phi,
                                      k, poll)

    with bit_generator.lock:
        records = _drive(advance, phi, steps, record_every, progress,
                         "SGD")
    return phi if records is None else records


_FILL = {"rng": _RNG_RULE, "record": _RECORD_RULE,
         "interrupt": _INTERRUPT_RULE}
for _f in (batch_noise_cov, sgd_quadratic, langevin, sgd_least_squares):
    _f.__doc__ = _f.__doc__.format(**_FILL)
del _f
