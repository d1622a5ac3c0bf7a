import pathlib

import pytest

import sgdprob

REPO = pathlib.Path(__file__).resolve().parent.parent


def pytest_report_header(config):
    return f"sgdprob {sgdprob.__version__} from {pathlib.Path(sgdprob.__file__).parent}"


@pytest.fixture
def rng():
    import numpy as np
    return np.random.default_rng(20261203)
