"""The built wheel and sdist hold every file of the package, and pass ``twine check``.

Every other test runs on the editable install, which reads the checkout: a file the wheel forgets
(the store's migrations were) is only noticed by a user of the wheel. The distributions are built
once, with ``python -m build``, from a copy of the checkout's files (what a fresh clone would hold:
tracked files plus untracked ones not ignored), so neither a stale ``build/`` folder nor an ignored
file can make them look complete. ``scripts/wheel-check.sh`` then installs the wheel and runs it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "digitalhub_provider"


def _git_files(*args: str) -> list[str]:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", *args], capture_output=True, text=True, check=True
    ).stdout
    return [name for name in out.split("\0") if name]


def _is_cache(name: str) -> bool:
    return "__pycache__" in name.split("/") or name.endswith((".pyc", ".pyo"))


def package_files() -> set[str]:
    """The package's files tracked by git (those present in the work tree), caches excepted."""
    return {name for name in _git_files("--", PACKAGE) if not _is_cache(name) and (ROOT / name).is_file()}


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("dists")
    src, out = base / "src", base / "dist"
    for name in _git_files("--cached", "--others", "--exclude-standard"):
        if (ROOT / name).is_file() and not _is_cache(name):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    res = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, f"python -m build failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return {name for name in zf.namelist() if not name.endswith("/")}


def sdist_names(sdist: Path) -> set[str]:
    """Member files of the sdist, without its top folder (``name-version/``)."""
    with tarfile.open(sdist) as tf:
        return {m.name.split("/", 1)[1] for m in tf.getmembers() if m.isfile() and "/" in m.name}


def test_package_has_non_python_files() -> None:
    # the check below is only worth something if the package has more than modules
    expected = package_files()
    assert f"{PACKAGE}/py.typed" in expected
    assert f"{PACKAGE}/stores/metadata/migrations/script.py.mako" in expected
    assert any(n.startswith(f"{PACKAGE}/stores/metadata/migrations/versions/") for n in expected)


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_every_package_file_is_in_the_distribution(dists: dict[str, Path], kind: str) -> None:
    names = wheel_names(dists[kind]) if kind == "wheel" else sdist_names(dists[kind])
    missing = sorted(package_files() - names)
    assert not missing, f"{dists[kind].name} lacks {len(missing)} file(s) of the package: {missing}"
    caches = sorted(n for n in names if _is_cache(n))
    assert not caches, f"{dists[kind].name} holds caches: {caches}"


def test_twine_check(dists: dict[str, Path]) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists["wheel"]), str(dists["sdist"])],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("PASSED") == 2, res.stdout
