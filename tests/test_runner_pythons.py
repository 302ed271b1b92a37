"""The Python versions setup.cfg declares are the ones that run: a job on every Python its classifiers
name (in a runtime environment built for that version; the worker's own in a subprocess), and the lowest
of them is python_requires' floor and the runner's minimum. The Airflow side runs on the worker's Python
(3.11: the suite, and scripts/lower-bounds.sh on the lowest declared Airflow)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

import digitalhub_provider as dh
from digitalhub_provider.launchers.envs import MIN_RUNNER_PYTHON

SETUP_CFG = Path(__file__).resolve().parent.parent / "setup.cfg"
CODE = """
import sys

from digitalhub_provider import handler


@handler(outputs=["version"])
def h():
    return list(sys.version_info[:2])
"""


def _cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(SETUP_CFG)
    return cfg


def classifier_pythons() -> list[tuple[int, int]]:
    found = re.findall(r"Programming Language :: Python :: 3\.(\d+)\s*$", _cfg()["metadata"]["classifiers"], re.M)
    return sorted((3, int(minor)) for minor in found)


def test_the_lowest_classifier_is_python_requires_and_the_runner_minimum() -> None:
    versions = classifier_pythons()
    assert versions, "setup.cfg names no Python version in its classifiers"
    floor = re.fullmatch(r">=\s*3\.(\d+)", _cfg()["options"]["python_requires"].strip())
    assert floor, f"python_requires is not '>=3.N': {_cfg()['options']['python_requires']!r}"
    assert versions[0] == (3, int(floor.group(1))) == MIN_RUNNER_PYTHON, (versions, floor.group(0))
    assert versions == [(3, m) for m in range(versions[0][1], versions[-1][1] + 1)], f"a gap in {versions}"


@pytest.mark.parametrize("version", classifier_pythons(), ids=lambda v: f"{v[0]}.{v[1]}")
def test_a_job_runs_on_every_python_the_classifiers_name(version: tuple[int, int]) -> None:
    fn = dh.new_function(project="demo", name=f"py3{version[1]}", kind="python", code=CODE, handler="h",
                         python_version=f"PYTHON{version[0]}_{version[1]}")  # fmt: skip
    run = fn.run(action="job")
    assert run.state == "COMPLETED", run.status.message
    assert run.results() == {"version": list(version)}
