"""The source distribution carries everything needed to build and test,
and a wheel built from it holds the compiled extensions and the data."""
import subprocess
import sys
import tarfile
import zipfile

import pytest

from conftest import REPO

pytest.importorskip("build")


def test_sdist_carries_sources_data_and_tests(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--sdist", "-o",
                    str(tmp_path), str(REPO)], check=True,
                   capture_output=True)
    (sdist,) = tmp_path.glob("sgdprob-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for path in ["setup.py", "pyproject.toml", "LICENSE", "README.md",
                 "csrc/_gufuncs.c", "csrc/sgdprob.h",
                 "csrc/running_average.c", "csrc/running_average_impl.h",
                 "sgdprob/__init__.py", "tests/conftest.py"]:
        assert path in names, path
    # every C source in the repository is shipped
    for c in (REPO / "csrc").iterdir():
        assert f"csrc/{c.name}" in names


def test_wheel_built_from_the_sdist_holds_extensions_and_data(tmp_path):
    # `python -m build` makes the sdist first and the wheel from it, so
    # this also checks that the sdist is enough to compile the package.
    subprocess.run([sys.executable, "-m", "build", "-o", str(tmp_path),
                    str(REPO)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("sgdprob-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
    for stem in ["sgdprob/_gufuncs", "sgdprob/_simulate"]:
        assert any(n.startswith(stem) and n.endswith((".so", ".pyd"))
                   for n in names), stem
    for path in ["sgdprob/__init__.py", "sgdprob/data/diabetes.csv",
                 "sgdprob/data/README.md"]:
        assert path in names, path
