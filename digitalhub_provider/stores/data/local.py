"""A local directory as data store."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from digitalhub_provider.errors import EntityNotFoundError
from digitalhub_provider.stores.data.base import DataStore


def to_path(url: str) -> Path:
    return Path(url[len("file://") :] if url.startswith("file://") else url)


class LocalDataStore(DataStore):
    def upload(self, local_path: str | Path, url: str) -> None:
        dest = to_path(url)
        if Path(local_path).resolve() == dest.resolve():
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(local_path, tmp)
        os.replace(tmp, dest)

    def download(self, url: str, local_path: str | Path) -> Path:
        src = self._existing(url)
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.resolve() != dest.resolve():
            shutil.copyfile(src, dest)
        return dest

    def write_bytes(self, url: str, data: bytes) -> None:
        dest = to_path(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)

    def read_bytes(self, url: str) -> bytes:
        return self._existing(url).read_bytes()

    def exists(self, url: str) -> bool:
        return to_path(url).exists()

    def delete(self, url: str) -> None:
        path = to_path(url)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    def local_path(self, url: str) -> Path | None:
        return to_path(url)

    def _existing(self, url: str) -> Path:
        path = to_path(url)
        if not path.exists():
            raise EntityNotFoundError(f"no file at {url!r}")
        return path
