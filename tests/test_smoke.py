import numpy as np

import sgdprob


def test_gufuncs_are_ufuncs():
    for name, sig in [("leaky_sum", "(n),(),()->(n)"), ("ema", "(n),(),()->(n)"),
                      ("warmup_mean", "(n),(),(),()->(n)")]:
        g = getattr(sgdprob.gufuncs, name)
        assert isinstance(g, np.ufunc)
        assert g.signature == sig


def test_leaky_sum_small():
    np.testing.assert_array_equal(sgdprob.leaky_sum(np.ones(4), 2.0),
                                  [1.0, 1.5, 1.75, 1.875])
