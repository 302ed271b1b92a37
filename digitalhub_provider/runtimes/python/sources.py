"""Fetch a function's source into a working directory and import its handler.

Sources: inline (``code`` / ``base64``, or a local ``code_src`` file the
control plane embedded), ``git+https://host/owner/repo.git#ref`` (branch, tag
or commit), ``zip+s3://`` and ``zip+file://`` archives (unpacked without path
traversal), and ``http(s)://`` single files.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from digitalhub_provider.errors import RunError

if TYPE_CHECKING:
    from digitalhub_provider.stores.context import Context

DEFAULT_FILENAME = "main.py"


def fetch_source(source: dict[str, Any], workdir: Path, ctx: Context) -> Path:
    """Materialise ``source`` under ``workdir`` and return the file or folder holding the code."""
    if "inline" in source:
        inline = source["inline"]
        name = Path(inline.get("filename") or DEFAULT_FILENAME).name
        if not name.endswith(".py"):
            name += ".py"
        target = workdir / name
        target.write_bytes(base64.b64decode(inline["base64"]))
        return target
    url = str(source.get("url") or "")
    if url.startswith("git+"):
        return _git(url[len("git+") :], workdir / "repo")
    if url.startswith("zip+"):
        archive = workdir / "source.zip"
        inner = url[len("zip+") :]
        if inner.startswith("file://"):
            inner = inner[len("file://") :]
        ctx.data_store(inner).download(inner, archive)
        return safe_unzip(archive, workdir / "src")
    if url.startswith(("http://", "https://")):
        name = Path(url.split("?", 1)[0]).name or DEFAULT_FILENAME
        target = workdir / (name if name.endswith(".py") else name + ".py")
        ctx.data_store(url).download(url, target)
        return target
    raise RunError(
        f"unsupported code_src {url!r}: use a local file, git+https://, zip+s3://, zip+file:// or http(s)://"
    )


def safe_unzip(archive: Path, dest: Path) -> Path:
    """Unpack a zip, refusing absolute paths, ``..`` entries and symbolic links."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise RunError(f"source archive {archive.name} is not a valid zip file") from None
    with zf:
        for info in zf.infolist():
            name = info.filename
            parts = PurePosixPath(name.replace("\\", "/")).parts
            target = (root / name).resolve()
            if name.startswith(("/", "\\")) or ".." in parts or (target != root and root not in target.parents):
                raise RunError(f"refusing to unpack {name!r} from the source archive: it points outside the folder")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise RunError(f"refusing to unpack {name!r} from the source archive: symbolic links are not allowed")
        zf.extractall(root)
    return root


def _git(spec: str, dest: Path) -> Path:
    url, _, ref = spec.partition("#")
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}

    def git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)

    res = git("clone", "--quiet", url, str(dest))
    if res.returncode != 0:
        raise RunError(
            f"cannot clone {url!r}: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else 'git failed'}"
        )
    if ref:
        res = git("checkout", "--quiet", ref, cwd=dest)
        if res.returncode != 0:
            res = git("checkout", "--quiet", f"origin/{ref}", cwd=dest)
        if res.returncode != 0:
            raise RunError(f"git ref {ref!r} does not exist in {url!r}")
    return dest


def load_handler(location: Path, handler: str) -> Callable[..., Any]:
    """Import ``handler`` (``function`` or ``module:function``) from the fetched source."""
    if not handler:
        raise RunError("the function has no handler: set handler='function' or 'module:function'")
    module_name, _, func_name = handler.rpartition(":")
    folder = location if location.is_dir() else location.parent
    sys.path.insert(0, str(folder))
    try:
        if module_name:
            module = importlib.import_module(module_name)
            where = module_name
        else:
            file = location if location.is_file() else folder / DEFAULT_FILENAME
            if not file.is_file():
                raise RunError(f"handler {handler!r} names no module and the source has no {DEFAULT_FILENAME}")
            where = file.name
            spec = importlib.util.spec_from_file_location(file.stem, file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[file.stem] = module
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise RunError(
            f"syntax error in {Path(exc.filename or '').name or 'the source'} line {exc.lineno}: {exc.msg}"
        ) from None
    except ModuleNotFoundError as exc:
        raise RunError(f"cannot import the handler's module: {exc}") from None
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise RunError(f"handler {func_name!r} not found in {where}")
    return fn
