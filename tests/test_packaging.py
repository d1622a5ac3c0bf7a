"""The source distribution carries everything needed to build and test."""
import subprocess
import sys
import tarfile

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
