"""The data store interface: files addressed by URL, streamed, never read whole.

A store serves the URLs of one scheme. Entity paths are full URLs (``s3://``)
or absolute local paths, so an entity can be read back by whoever has access
to the store, whatever the default store of the reader is.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from digitalhub_provider.errors import StoreError


class DataStore(ABC):
    read_only = False

    @abstractmethod
    def upload(self, local_path: str | Path, url: str) -> None:
        """Copy a local file to ``url`` (streamed; multipart on S3)."""

    @abstractmethod
    def download(self, url: str, local_path: str | Path) -> Path:
        """Copy ``url`` to a local file (streamed) and return its path."""

    @abstractmethod
    def write_bytes(self, url: str, data: bytes) -> None:
        """Write a small object atomically: readers see the old or the new bytes."""

    @abstractmethod
    def read_bytes(self, url: str) -> bytes:
        """Read a small object (RunSpec, RunResult, logs)."""

    @abstractmethod
    def exists(self, url: str) -> bool: ...

    @abstractmethod
    def delete(self, url: str) -> None:
        """Delete an object, or everything under a prefix."""

    def local_path(self, url: str) -> Path | None:
        """A path readers can open in place, when the store is a local directory."""
        return None

    def _refuse_write(self, url: str) -> None:
        raise StoreError(f"{url!r} is a read-only source: it cannot be written or deleted")
