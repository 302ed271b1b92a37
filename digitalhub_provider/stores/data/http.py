"""``http(s)://`` URLs: read-only sources (the seed's dataitems from a URL)."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
from pathlib import Path

from digitalhub_provider.errors import EntityNotFoundError, StoreError
from digitalhub_provider.stores.data.base import DataStore


class HttpDataStore(DataStore):
    read_only = True

    def download(self, url: str, local_path: str | Path) -> Path:
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as fh:
                shutil.copyfileobj(resp, fh, length=1 << 20)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise EntityNotFoundError(f"no file at {url!r} (HTTP 404)") from None
            raise StoreError(f"cannot read {url!r}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise StoreError(f"cannot read {url!r}: {getattr(exc, 'reason', exc)}") from None
        return dest

    def read_bytes(self, url: str) -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                return resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise StoreError(f"cannot read {url!r}: {getattr(exc, 'reason', exc)}") from None

    def exists(self, url: str) -> bool:
        try:
            req = urllib.request.Request(url, method="HEAD")
            with urllib.request.urlopen(req, timeout=30):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def upload(self, local_path: str | Path, url: str) -> None:
        self._refuse_write(url)

    def write_bytes(self, url: str, data: bytes) -> None:
        self._refuse_write(url)

    def delete(self, url: str) -> None:
        self._refuse_write(url)
