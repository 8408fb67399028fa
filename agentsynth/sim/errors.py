"""The server's errors, in OpenAI's JSON error shape, and the middleware that answers every
failure in it.

Every error the server sends is ``{"error": {"message", "type", "param", "code"}}`` with its HTTP
status, as the OpenAI API sends them: a bad request body is 400 with ``param`` naming the field
(``messages[0].role``) and a ``code`` such as ``missing_required_parameter``, ``invalid_type`` or
``invalid_value``; an unknown model 404 ``model_not_found``; an unknown route 404; a wrong method
405 (with ``Allow``); anything unexpected 500 ``server_error``. Request validation raises
:class:`APIError` (through the constructors below, which word the messages as OpenAI does);
:func:`json_errors` turns it, and aiohttp's own HTTP errors, into the JSON reply.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from aiohttp import web

__all__ = [
    "APIError", "above_max", "below_min", "empty_array", "invalid_type", "invalid_value", "json_errors", "missing",
    "model_not_found", "unsupported",
]

_log = logging.getLogger(__name__)


class APIError(Exception):
    """An error reply: HTTP ``status`` and OpenAI's error fields."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.headers = headers

    def body(self) -> bytes:
        """The JSON body: ``{"error": {"message", "type", "param", "code"}}``."""
        return json.dumps({"error": {"message": self.message, "type": self.type, "param": self.param,
                                     "code": self.code}}).encode()

    def response(self) -> web.Response:
        """The reply to send."""
        return web.Response(status=self.status, body=self.body(), content_type="application/json", headers=self.headers)


def kind(value: Any) -> str:
    """How OpenAI's messages name a JSON value's type: ``an integer``, ``a string``, ``an object``…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _quoted(values: Sequence[str]) -> str:
    q = [f"'{v}'" for v in values]
    return q[0] if len(q) == 1 else f"{', '.join(q[:-1])}{',' if len(q) > 2 else ''} and {q[-1]}"


def missing(param: str) -> APIError:
    """A required field is absent."""
    return APIError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def invalid_type(param: str, expected: str, value: Any) -> APIError:
    """A field has the wrong JSON type (``expected``: e.g. ``"a string"``, ``"an array"``)."""
    return APIError(400, f"Invalid type for '{param}': expected {expected}, but got {kind(value)} instead.",
                    param=param, code="invalid_type")


def invalid_value(param: str, value: Any, supported: Iterable[str]) -> APIError:
    """A field holds a value outside its set of ``supported`` values."""
    return APIError(400, f"Invalid value: '{value}'. Supported values are: {_quoted(list(supported))}.",
                    param=param, code="invalid_value")


def empty_array(param: str) -> APIError:
    """An array that must not be empty is."""
    return APIError(400, f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty "
                         "array instead.", param=param, code="empty_array")


def below_min(param: str, value: float, lo: float) -> APIError:
    """A number below its minimum."""
    what = "integer" if isinstance(value, int) else "decimal"
    return APIError(400, f"Invalid '{param}': {what} below minimum value. Expected a value >= {lo:g}, but got "
                         f"{value:g} instead.", param=param, code=f"{what}_below_min_value")


def above_max(param: str, value: float, hi: float) -> APIError:
    """A number above its maximum."""
    what = "integer" if isinstance(value, int) else "decimal"
    return APIError(400, f"Invalid '{param}': {what} above maximum value. Expected a value <= {hi:g}, but got "
                         f"{value:g} instead.", param=param, code=f"{what}_above_max_value")


def unsupported(param: str, why: str) -> APIError:
    """A valid OpenAI field or value this server does not implement (one line: ``why``)."""
    return APIError(400, f"'{param}' is not supported by this server: {why}.", param=param, code="unsupported_parameter")


def model_not_found(model: str, served: Sequence[str]) -> APIError:
    """404 for a model name the server does not serve; the message names the ones it does."""
    return APIError(404, f"The model '{model}' does not exist or you do not have access to it. This server serves "
                         f"{_quoted(list(served))}.", param="model", code="model_not_found")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure in OpenAI's error shape: :class:`APIError`, unknown routes (404),
    wrong methods (405, with ``Allow``), aiohttp's other HTTP errors (e.g. 413 for an oversized
    body) and unexpected exceptions (500 ``server_error``, logged)."""
    try:
        return await handler(request)
    except APIError as exc:
        return exc.response()
    except web.HTTPMethodNotAllowed as exc:
        allowed = sorted(exc.allowed_methods)
        return APIError(405, f"Method {request.method} is not allowed for {request.path} (use {', '.join(allowed)}).",
                        code="method_not_allowed", headers={"Allow": ", ".join(allowed)}).response()
    except web.HTTPNotFound:
        return APIError(404, f"Invalid URL ({request.method} {request.path}).", code="unknown_url").response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return APIError(exc.status, exc.text or exc.reason, type_="server_error" if exc.status >= 500 else
                        "invalid_request_error").response()
    except Exception:
        _log.exception("error answering %s %s", request.method, request.path)
        return APIError(500, "The server had an error while processing your request.", type_="server_error").response()
