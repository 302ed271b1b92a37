"""Metadata stores, chosen by URL scheme."""

from __future__ import annotations

from digitalhub_provider.errors import StoreError
from digitalhub_provider.stores.metadata.base import MetadataStore


def open_metadata_store(url: str) -> MetadataStore:
    """A store for ``url``: ``sqlite:///...`` or ``postgresql://...`` (SQLAlchemy URLs), or a DigitalHub
    Core REST API (``https://[:token@]host[/prefix]``)."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme in ("http", "https"):
        from digitalhub_provider.stores.metadata.rest import RestMetadataStore

        return RestMetadataStore(url)
    if scheme in ("sqlite", "postgresql", "postgres"):
        from digitalhub_provider.stores.metadata.sql import SQLMetadataStore

        if scheme == "postgres":
            url = "postgresql" + url[len("postgres") :]
        return SQLMetadataStore(url)
    raise StoreError(
        f"unsupported metadata store URL {url.split('@')[-1]!r}: use sqlite:///, postgresql:// or https://"
    )


__all__ = ["MetadataStore", "open_metadata_store"]
