"""The API's errors, as DigitalHub Core answers them.

The official SDK maps an error from its status code and a substring of the body
(``No such EntityName`` on a 404, ``Duplicated entity`` on a 400), so those texts are
kept literally; the rest of each message names what was wrong.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "error": HTTPStatus(self.status).phrase, "message": self.message}


def not_found(what: str) -> ApiError:
    return ApiError(404, f"No such EntityName: {what}")


def duplicated(what: str) -> ApiError:
    return ApiError(400, f"Duplicated entity: {what}")


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)
