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


try:
    from hypothesis import settings
except ImportError:      # the property tests skip themselves
    pass
else:
    # "default" keeps the suite fast; `pytest --hypothesis-profile=thorough`
    # searches much harder.
    settings.register_profile("default", max_examples=60)
    settings.register_profile("thorough", max_examples=2000)
    settings.load_profile("default")
