"""OpenAPI 3.1, generated from the router and the pydantic models (never written by hand).

Each handler carries an :class:`Operation` (attached with :func:`operation`); :func:`build_spec` walks
the app's routes, so a route without a description, or a description without a route, cannot exist
unnoticed (a test checks every route is described). Body and response schemas come from the same
pydantic models the handlers use to parse and render JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway import __version__
from gateway.http.models import ErrorResponse

H = TypeVar("H", bound=Callable[..., Any])
BINARY = {"schema": {"type": "string", "format": "binary"}}


LINK_PREFIX = "/upload/{token}"  # routes whose only credential is the upload link in their URL
SHARE_PAGE_PREFIX = "/s/{token}"  # the share page of a link: the link in the URL is the credential
HTML = "text/html"


def by_link(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in (LINK_PREFIX, SHARE_PAGE_PREFIX))


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    where: str = "query"


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    # a model (JSON), several models (oneOf), or a description (no body, or a streamed one)
    responses: dict[int, type[BaseModel] | tuple[type[BaseModel], ...] | str]
    body: type[BaseModel] | str | None = None  # a model, "raw", "multipart+json" or None
    params: tuple[Param, ...] = ()
    public: bool = False
    binary_response: str | None = None  # media type of a streamed body on 200/206
    errors: tuple[int, ...] = (400, 404)
    # pages: media types of their answers, errors included (text/html; or both, chosen by Accept)
    media: tuple[str, ...] = ()


def operation(op: Operation) -> Callable[[H], H]:
    def attach(handler: H) -> H:
        handler.__openapi__ = op  # type: ignore[attr-defined]
        return handler

    return attach


def described(handler: Any) -> Operation | None:
    return getattr(handler, "__openapi__", None)


def _models(app: web.Application) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {"ErrorResponse": ErrorResponse}
    for route in app.router.routes():
        op = described(route.handler)
        if op is None:
            continue
        things: list[Any] = [op.body]
        for out in op.responses.values():
            things += list(out) if isinstance(out, tuple) else [out]
        for thing in things:
            if isinstance(thing, type) and issubclass(thing, BaseModel):
                found[thing.__name__] = thing
    return list(found.values())


def _schema_ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def build_spec(app: web.Application, *, secured: bool) -> dict[str, Any]:
    models = _models(app)
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        op = described(route.handler)
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if op is None or path is None or route.method == "HEAD":
            continue
        entry: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "operationId": route.name}
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_params(path)
        ] + [
            {"name": p.name, "in": p.where, "description": p.description, "schema": p.schema}
            for p in op.params
        ]
        if params:
            entry["parameters"] = params
        if op.body == "raw":
            entry["requestBody"] = {"required": False, "content": {"*/*": BINARY}}
        elif op.body == "multipart+json":
            entry["requestBody"] = {
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "file": {"type": "array", "items": {"type": "string", "format": "binary"}},
                                "token": {"type": "string"},
                                "expiry": {"type": "string"},
                                "max_downloads": {"type": "string"},
                                "expires": {"type": "string"},
                                "name": {"type": "string"},
                            },
                        }
                    },
                    "application/json": {"schema": {"$ref": "#/components/schemas/JsonUploadRequest"}},
                }
            }
        elif isinstance(op.body, type):
            entry["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": _schema_ref(op.body)}},
            }
        responses: dict[str, Any] = {}
        for status, out in op.responses.items():
            if isinstance(out, str):
                content = (
                    {op.binary_response: BINARY} if op.binary_response and status in (200, 206) else None
                ) or ({m: _page_schema(m, ok=True) for m in op.media} if op.media and status < 300 else None)
                responses[str(status)] = {"description": out} | ({"content": content} if content else {})
            else:
                outs = out if isinstance(out, tuple) else (out,)
                schema = _schema_ref(outs[0]) if len(outs) == 1 else {"oneOf": [_schema_ref(o) for o in outs]}
                responses[str(status)] = {
                    "description": " or ".join(o.__name__ for o in outs),
                    "content": {"application/json": {"schema": schema}},
                }
                if links := _links(app, outs[0]):
                    responses[str(status)]["links"] = links
        public = op.public or by_link(path)
        error_statuses = set(op.errors) | ({401} if secured and not public else set())
        if isinstance(op.body, type):  # every JSON body: over the cap / not JSON
            error_statuses |= {400, 413, 415}
        for status in sorted(error_statuses):
            media = op.media or ("application/json",)
            responses.setdefault(
                str(status), {"description": "error", "content": {m: _page_schema(m) for m in media}}
            )
        entry["responses"] = responses
        if not public:
            entry["security"] = [{"bearer": []}] if secured else []
        paths.setdefault(path, {})[route.method.lower()] = entry
    if "JsonUploadRequest" not in schemas:
        from gateway.http.models import JsonUploadRequest

        _, extra = models_json_schema(
            [(JsonUploadRequest, "validation")], ref_template="#/components/schemas/{model}"
        )
        schemas.update(extra.get("$defs", {}))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Streaming asset gateway",
            "version": __version__,
            "description": "Uploads and downloads stream straight through to object storage; "
            "expiring, download-limited share links; zips on the fly.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "API key or JWT"}
            },
        },
    }


# Where a response names something the next request can use: OpenAPI links, so stateful fuzzing (and
# readers) can chain upload -> download / meta / tokens / delete, and mint -> use / revoke a link.
_LINK_SOURCES = {
    "UploadResponse": ("id", "$response.body#/asset/id"),
    "TokenCreated": ("token", "$response.body#/token/token"),
}


def _page_schema(media: str, *, ok: bool = False) -> dict[str, Any]:
    if media == HTML:
        return {"schema": {"type": "string"}}
    return {"schema": {"type": "object"} if ok else _schema_ref(ErrorResponse)}


def _links(app: web.Application, model: type[BaseModel]) -> dict[str, Any]:
    source = _LINK_SOURCES.get(model.__name__)
    if source is None:
        return {}
    param, expression = source
    out: dict[str, Any] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if route.method == "HEAD" or path is None or described(route.handler) is None:
            continue
        if _path_params(path) == [param]:
            out[f"{route.name}-{route.method.lower()}"] = {
                "operationId": route.name,
                "parameters": {param: expression},
            }
    return out


def _path_params(path: str) -> list[str]:
    out, rest = [], path
    while "{" in rest:
        rest = rest.split("{", 1)[1]
        name, rest = rest.split("}", 1)
        out.append(name.split(":")[0])
    return out
