"""The examples users read: README code blocks and docstring examples run
and give what they say."""
import doctest
import re

import numpy as np
import pytest

import sgdprob
from conftest import REPO
from reference import running, tolerance


def test_readme_python_blocks_run():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    env = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), env)
    # the claims the README's comments make
    assert env["mu"].shape == (3, 10_000)
    assert env["Y"].shape == env["X"].shape
    assert env["Y"].strides == env["X"].strides
    whole = sgdprob.warmup_mean(env["x"], 100.0)
    joined = np.concatenate([env["first"], env["rest"]])
    # each within its rounding bound of the plain loop (tests/reference.py)
    ref, A = running("warmup_mean", env["x"], 100.0)
    assert np.all(np.abs(joined - whole) <= 2 * tolerance(ref, A, np.float64))


MODULES = ["sgdprob._running", "sgdprob.analytic"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    import importlib
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_public_functions_have_numpydoc_sections():
    for name in ["leaky_sum", "ema", "warmup_mean"]:
        doc = getattr(sgdprob, name).__doc__
        for section in ["Parameters", "Returns", "Raises", "Notes",
                        "Examples"]:
            assert f"\n    {section}\n    ---" in doc, (name, section)
    for name in sgdprob.analytic.__all__:
        doc = getattr(sgdprob.analytic, name).__doc__
        for section in ["Parameters", "Returns", "Examples"]:
            assert f"\n    {section}\n    ---" in doc, (name, section)
    for name in ["leaky_sum", "ema", "warmup_mean"]:
        g = getattr(sgdprob.gufuncs, name)
        assert g.__doc__.startswith(name + "(")
