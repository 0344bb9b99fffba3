"""The OpenAPI 3.1 document of the query API, generated from the route table and the pydantic models.

Nothing here is written by hand per route: paths, methods, bodies, query parameters and result
shapes all come from the route table it is given (:data:`heliport.api.app.ENDPOINTS`) and the
pydantic models it names (:mod:`heliport.api.schemas`). The table is an argument, not an import, so
this module depends only on :mod:`heliport.api.endpoint`, never on the app that serves it. Each
operation documents its success answer (``{data, error: null}``) and the failures it can give
(``{data: null, error}``), so a client generator, or schemathesis in CI, can hold the server to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter

import heliport
from heliport.api.endpoint import Endpoint

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"
_ERROR = {
    "type": "object",
    "properties": {"data": {"type": "null"}, "error": {"type": "string"}},
    "required": ["data", "error"],
}
_FAILURES = {
    "400": "Invalid body, query parameter or filter; the message names the field.",
    "401": "Missing, unknown or revoked heliport key.",
    "404": "No such request, prompt or version in this organisation (or no such route).",
    "413": "Body too large.",
}


def openapi_document(endpoints: Iterable[Endpoint[Any]]) -> dict[str, Any]:
    """The document of ``endpoints``, in their order. It is built anew on each call (the app keeps the
    one it serves)."""
    components: dict[str, Any] = {"Error": _ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "heliport query API",
            "version": getattr(heliport, "__version__", "0"),
            "description": "Helicone-compatible REST API over heliport's request log.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "api_key": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "'Bearer <heliport key>'",
                }
            },
        },
    }


def _schema(annotation: Any, components: dict[str, Any], mode: str) -> dict[str, Any]:
    """The JSON schema of ``annotation``; the models it names go into ``components``."""
    schema = TypeAdapter(annotation).json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
    components.update(schema.pop("$defs", {}))
    return schema


#: Signed-URL routes that answer a file, not the JSON envelope (their failures are still JSON).
_RAW_ANSWERS: dict[str, tuple[str, ...]] = {
    "GetCsvDownload": ("text/csv",),
    "GetRequestAsset": ("image/*", "application/octet-stream"),
}


def _operation(endpoint: Endpoint[Any], components: dict[str, Any]) -> dict[str, Any]:
    data = _schema(endpoint.result, components, "serialization") if endpoint.result is not None else {"type": "null"}
    success: dict[str, Any] = {
        "type": "object",
        "properties": {"data": data, "error": {"type": "null"}},
        "required": ["data", "error"],
    }
    if endpoint.operation_id == "GetRequestBody":
        success = data  # the body URL answers the stored {request, response} itself
    raw = _RAW_ANSWERS.get(endpoint.operation_id)
    content = (
        {media: {"schema": {"type": "string", "format": "binary"}} for media in raw}
        if raw is not None
        else {"application/json": {"schema": success}}
    )
    responses: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    for status, description in _FAILURES.items():
        if status == "401" and endpoint.public:
            continue
        if status == "413" and endpoint.body is None:
            continue
        responses[status] = {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}},
        }
    parameters: list[dict[str, Any]] = []
    for name in re.findall(r"\{(\w+)\}", endpoint.path):
        parameters.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
    for name, schema in (endpoint.query or {}).items():
        parameters.append({"name": name, "in": "query", "required": False, "schema": dict(schema)})
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": parameters,
        "responses": responses,
    }
    if not endpoint.public:
        operation["security"] = [{"api_key": []}]
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(endpoint.body, components, "validation")}},
        }
    return operation
