"""The extras of a ``digitalhub`` connection, read and typed in one place.

:class:`ConnectionExtras` is built once, by :class:`~digitalhub_provider.hooks.digitalhub.DigitalHubHook`,
from the connection's extra JSON; every other module reads its values from it, never the raw keys.

- strings: ``None`` or ``""`` mean unset (``None``), except ``default_image``, where ``""`` is kept (no image);
- booleans (:func:`parse_bool`, the one parser for every boolean key): ``true``/``false``, ``1``/``0``,
  ``yes``/``no``, ``on``/``off`` in any case, a JSON boolean, or ``0``/``1``; ``None`` or ``""`` mean unset;
- integers: a JSON integer or a string of one;
- objects (``profiles``, ``pod_operator_kwargs``): a JSON object, or a string holding one.

An unknown key is ignored (Airflow's UI may add its own); a known key of the wrong type is a
:class:`ConnectionExtrasError` naming the key and the value (a secret's value is never shown).

Beside :mod:`digitalhub_provider.config`, outside the layers: the hook builds it and the launchers read it.
Only the standard library is imported here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
LAUNCHERS = ("local", "kubernetes")
SECRET_KEYS = frozenset({"metadata_password", "mlrun_token"})  # their values are never put in a message


class ConnectionExtrasError(ValueError):
    """A known extra of the connection holds a value of the wrong type."""


def _where(key: str, conn_id: str | None) -> str:
    return f"connection {conn_id!r}: extra {key!r}" if conn_id else f"extra {key!r}"


def _shown(key: str, value: Any) -> str:
    return f"a {type(value).__name__} (hidden)" if key in SECRET_KEYS else repr(value)


def parse_bool(key: str, value: Any, conn_id: str | None = None) -> bool | None:
    """``value`` as a boolean (``None`` when unset); the one boolean parser of the connection's extras."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise ConnectionExtrasError(
        f"{_where(key, conn_id)} must be a boolean (true/false, 1/0, yes/no, on/off), got {_shown(key, value)}"
    )


def parse_int(key: str, value: Any, conn_id: str | None = None) -> int | None:
    """``value`` as an integer (``None`` when unset)."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ConnectionExtrasError(f"{_where(key, conn_id)} must be an integer, got {_shown(key, value)}")


def parse_str(key: str, value: Any, conn_id: str | None = None, keep_empty: bool = False) -> str | None:
    """``value`` as a string (``None`` when unset; ``""`` is unset too unless ``keep_empty``)."""
    if value is None or (value == "" and not keep_empty):
        return None
    if isinstance(value, str):
        return value
    raise ConnectionExtrasError(f"{_where(key, conn_id)} must be a string, got {_shown(key, value)}")


def parse_object(key: str, value: Any, conn_id: str | None = None) -> dict[str, Any]:
    """``value`` as a dictionary: a JSON object, or a string holding one (``{}`` when unset)."""
    if value is None or value == "":
        return {}
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ConnectionExtrasError(
                f"{_where(key, conn_id)} is not valid JSON ({exc}): {_shown(key, value)}"
            ) from None
    if not isinstance(parsed, dict):
        raise ConnectionExtrasError(f"{_where(key, conn_id)} must be a JSON object, got {_shown(key, value)}")
    return dict(parsed)


def parse_launcher(key: str, value: Any, conn_id: str | None = None) -> str:
    name = parse_str(key, value, conn_id)
    if name is None:
        return "local"
    if name.strip().lower() not in LAUNCHERS:
        raise ConnectionExtrasError(
            f"{_where(key, conn_id)} must be one of {', '.join(LAUNCHERS)}, got {_shown(key, value)}"
        )
    return name.strip().lower()


@dataclass(frozen=True)
class ConnectionExtras:
    """The typed extras of a ``digitalhub`` connection; the defaults are those of no connection at all."""

    # the stores
    metadata_url: str | None = None
    metadata_password: str | None = field(default=None, repr=False)
    data_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    mlrun_api: str | None = None
    mlrun_token: str | None = field(default=None, repr=False)
    # the console (the task's extra link)
    ui_url: str | None = None
    # a KFP API server
    kfp_host: str | None = None
    kfp_namespace: str | None = None
    kfp_experiment_id: str | None = None
    # where runs execute: "local" or "kubernetes"; in_process None means "when the function can"
    launcher: str = "local"
    in_process: bool | None = None
    # Kubernetes (None: the launcher's default)
    namespace: str | None = None
    service_account: str | None = None
    kubernetes_conn_id: str | None = None
    kube_config_path: str | None = None
    in_cluster: bool | None = None
    cluster_context: str | None = None
    default_image: str | None = None  # "" is kept: no image
    credentials_secret: str | None = None
    profiles: dict[str, Any] = field(default_factory=dict)
    startup_timeout_seconds: int | None = None
    gpu_resource: str | None = None
    pod_operator_kwargs: dict[str, Any] = field(default_factory=dict)
    # image builds on Kubernetes (the build action, a Kaniko pod)
    registry: str | None = None
    registry_secret: str | None = None
    kaniko_image: str | None = None

    @classmethod
    def from_dict(cls, extra: Any, conn_id: str | None = None) -> ConnectionExtras:
        """The typed extras of a connection's extra JSON (already parsed); unknown keys are ignored."""
        if extra is None:
            return cls()
        if not isinstance(extra, dict):
            where = f"connection {conn_id!r}" if conn_id else "the connection"
            raise ConnectionExtrasError(f"the extras of {where} must be a JSON object, got a {type(extra).__name__}")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in extra:
                continue
            raw = extra[f.name]
            parse = PARSERS.get(f.name)
            if parse is not None:
                values[f.name] = parse(f.name, raw, conn_id)
            else:
                values[f.name] = parse_str(f.name, raw, conn_id, keep_empty=f.name in KEEP_EMPTY)
        return cls(**values)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """Every extra read from a connection."""
        return tuple(f.name for f in fields(cls))


# The keys that are not strings, and their parsers; every other key is a string.
PARSERS: dict[str, Callable[[str, Any, str | None], Any]] = {
    "launcher": parse_launcher,
    "in_process": parse_bool,
    "in_cluster": parse_bool,
    "profiles": parse_object,
    "pod_operator_kwargs": parse_object,
    "startup_timeout_seconds": parse_int,
}
KEEP_EMPTY = frozenset({"default_image"})
