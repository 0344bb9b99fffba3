"""What a query-API route is, what its handler is given, and how its body is validated.

This module is the leaf that the rest of the query API shares: ``api/app.py`` builds its routes from a
table of :class:`Endpoint`, ``api/openapi.py`` documents that same table (given it as an argument), and
handler modules such as ``api/overview.py`` receive a :class:`Call`. It imports nothing from them, so
none of them has to import ``api/app.py`` to know these shapes, and no two of them import each other.

A handler is called with a context and the call. The context is whatever the route table is built for
(``api/app.py``'s ``QueryApi``, which holds the database and the body links); a handler may declare a
narrower protocol it needs (the dashboard's handlers take anything with a ``db``), and an
:class:`Endpoint` is contravariant in its context, so such a handler fits a table built for ``QueryApi``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from heliport.errors import InvalidBodyError

__all__ = ["Call", "Endpoint", "Handler", "parse_body"]

_M = TypeVar("_M", bound=BaseModel)
#: What a handler is given besides the call (see the module docstring).
_Context = TypeVar("_Context", contravariant=True)


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated API call, as a handler sees it: its body already validated (the only form
    of it a handler gets, so every field check lives in the body's model)."""

    org_id: str
    body: BaseModel | None
    request: Request

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    def parsed(self, model: type[_M]) -> _M:
        """The body as ``model``. A TypeError is a wiring bug (the route table declared another body
        for this handler), so it is a 500, never the caller's 400."""
        if not isinstance(self.body, model):
            raise TypeError(f"endpoint declared no {model.__name__} body")
        return self.body


#: A route's handler: the context and the call -> the ``data`` of the answer (or a whole Response).
Handler = Callable[[_Context, Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint(Generic[_Context]):
    """One row of the route table: what Starlette routes and what ``/openapi.json`` documents."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    handler: Handler[_Context]
    #: The JSON body's model (validated before the handler runs), or None for no body.
    body: type[BaseModel] | None
    #: The type of ``data`` in a successful answer, for the OpenAPI document.
    result: Any
    #: Documented query parameters: name -> JSON schema.
    query: Mapping[str, Mapping[str, Any]] | None = None
    #: Needs no heliport key (the signed body URL carries its own proof).
    public: bool = False


def parse_body(model: type[_M], raw: Mapping[str, Any]) -> _M:
    """``raw`` (a decoded JSON object) validated as ``model``; a 400 naming the first field at fault
    (``Invalid timeFilter.endTimeUnixMs: ...``) from pydantic's error location, ``body`` for the whole."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidBodyError(f"Invalid {field}: {first['msg']}.", param=field) from None
