"""Data stores, chosen by the scheme of a URL (a small registry)."""

from __future__ import annotations

from digitalhub_provider.config import Settings
from digitalhub_provider.errors import EntityError
from digitalhub_provider.stores.data.base import DataStore


def scheme_of(url: str) -> str:
    if url.startswith(("http://", "https://")):
        return "http"
    if url.startswith("s3://"):
        return "s3"
    return "file"


def open_data_store(url: str, settings: Settings) -> DataStore:
    """The store that serves ``url``: a local path, ``file://``, ``s3://`` or ``http(s)://``."""
    scheme = scheme_of(url)
    if scheme == "s3":
        from digitalhub_provider.stores.data.s3 import S3DataStore

        return S3DataStore(settings)
    if scheme == "http":
        from digitalhub_provider.stores.data.http import HttpDataStore

        return HttpDataStore()
    from digitalhub_provider.stores.data.local import LocalDataStore

    return LocalDataStore()


def join_url(root: str, *parts: str) -> str:
    """``root`` and ``parts`` joined with '/'; a part that would leave ``root`` ('..' segments, NUL)
    is refused before any file is touched."""
    for part in parts:
        if "\x00" in part or ".." in part.replace("\\", "/").split("/"):
            raise EntityError(f"path part {part!r} would leave the data store's root: '..' and NUL are not allowed")
    return "/".join([root.rstrip("/"), *(p.strip("/") for p in parts)])


__all__ = ["DataStore", "join_url", "open_data_store", "scheme_of"]
