"""The project's own exception types.

Every error a user can cause ends in one of these, with a message that names
the field, key or file at fault.
"""

from __future__ import annotations


class DigitalHubError(Exception):
    """Base of every error raised by the provider."""


class EntityError(DigitalHubError):
    """A spec, name, kind or key that DigitalHub would reject."""


class EntityNotFoundError(DigitalHubError):
    """The entity asked for does not exist."""


class EntityExistsError(DigitalHubError):
    """An entity with that id already exists (e.g. another process created it first)."""


class StoreError(DigitalHubError):
    """A metadata or data store cannot be reached or refused an operation."""


class RunError(DigitalHubError):
    """A run could not be prepared, launched or completed."""


class IllegalTransitionError(RunError):
    """A run state change the transition table does not allow (e.g. COMPLETED -> RUNNING)."""


class StateChangedError(RunError):
    """The run's stored state is no longer the one a write expected: another process moved it
    (a stop, the reconciler) since this one read it."""


class BackendError(RunError):
    """A runtime environment (virtualenv, interpreter) is missing or broken."""
