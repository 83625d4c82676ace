"""The OpenAPI 3 document of /api/v1, built from the app's routes and docstrings.

Convention for every ``api.*`` view function: the docstring's first line is the
summary; the YAML after a ``---`` line is the operation, keyed by HTTP method.
Schemas are named by marshmallow class name (``schema: CaseSchema``, or a
module-qualified path when two classes share a name) and errors point at the
shared response, ``{$ref: "#/components/responses/Error"}``. An endpoint without
YAML still appears, with its summary, so nothing is silently missing; a broken
docstring shows up as an ``x-spec-error`` on its operation instead of breaking the
whole document.

Modules add components of their own with :func:`spec_component`.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.yaml_utils import load_operations_from_docstring
from flask import Flask, current_app
from marshmallow import Schema, class_registry, fields
from marshmallow.exceptions import RegistryError

logger = logging.getLogger(__name__)

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.0.0"
#: Where the built document is cached for the app's lifetime.
EXTENSION_KEY = "mediation.openapi"
ERROR_REF = {"$ref": "#/components/responses/Error"}
METHODS = ("get", "put", "post", "patch", "delete")
_VARIABLE = re.compile(r"<(?:(?P<converter>[^:<>]+):)?(?P<name>\w+)>")
_SCHEMA_KEYS = ("schema", "items", "additionalProperties", "not")
_SCHEMA_LISTS = ("oneOf", "anyOf", "allOf")

ComponentHook = Callable[[APISpec, MarshmallowPlugin], None]
_component_hooks: list[ComponentHook] = []


class ErrorBodySchema(Schema):
    """The inside of an error answer."""

    code = fields.String(
        required=True,
        metadata={"description": "snake_case, e.g. `validation_error`, `not_found`."},
    )
    message = fields.String(required=True, metadata={"description": "Human text."})
    fields = fields.Dict(
        metadata={"description": "Per-field messages (validation errors only)."}
    )


class ErrorSchema(Schema):
    """Every error: ``{"error": {"code", "message", "fields"?}}``."""

    error = fields.Nested(ErrorBodySchema, required=True)


class SpecError(Exception):
    """A docstring's operation cannot be turned into OpenAPI."""


def spec_component(hook: ComponentHook) -> ComponentHook:
    """Register ``hook(spec, plugin)`` to add components before the paths are read."""
    if hook not in _component_hooks:
        _component_hooks.append(hook)
    return hook


def get_spec(app: Flask | None = None) -> dict[str, Any]:
    """Return the OpenAPI document of ``app`` (built once, then cached)."""
    app = app or current_app._get_current_object()
    spec = app.extensions.get(EXTENSION_KEY)
    if spec is None:
        spec = build_spec(app)
        app.extensions[EXTENSION_KEY] = spec
    return spec


def build_spec(app: Flask) -> dict[str, Any]:
    """Build the document from every ``api.*`` rule of ``app``."""
    plugin = MarshmallowPlugin(
        schema_name_resolver=_name_resolver({"Error": ErrorSchema})
    )
    spec = APISpec(
        title="Online consumer dispute resolution API",
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={
            "description": (
                "JSON everywhere; times are ISO 8601 with offset; dates YYYY-MM-DD; "
                "money is integer fen (CNY). Errors are "
                '`{"error": {"code", "message", "fields"?}}`.'
            )
        },
        servers=[{"url": "/"}],
    )
    _add_common_components(spec, app)
    for hook in _component_hooks:
        hook(spec, plugin)
    for path, (parameters, operations) in sorted(_collect_paths(app).items()):
        _add_path(spec, path, parameters, operations)
    return spec.to_dict()


def _add_common_components(spec: APISpec, app: Flask) -> None:
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.response(
        "Error",
        {
            "description": "An error (400, 401, 403, 404, 409, 413, 415, 422, 429).",
            "content": {"application/json": {"schema": ErrorSchema}},
        },
    )
    spec.components.security_scheme(
        "bearerAuth",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from `POST /api/v1/auth/tokens`.",
        },
    )
    spec.components.security_scheme(
        "cookieAuth",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": app.config.get("SESSION_COOKIE_NAME", "session"),
            "description": (
                "The browser's session cookie. Writes with a cookie session also "
                "need the CSRF token in an `X-CSRFToken` header."
            ),
        },
    )


def _name_resolver(taken: dict[str, type]) -> Callable[[Any], str | None]:
    """Name components after their class (``CaseSchema`` -> ``Case``), uniquely.

    :param taken: names already given to classes.
    """

    def resolve(schema: Any) -> str | None:
        if isinstance(schema, str):
            schema = class_registry.get_class(schema)
        cls = schema if isinstance(schema, type) else type(schema)
        if not isinstance(schema, type) and any(
            getattr(schema, name, None)
            for name in ("only", "exclude", "load_only", "dump_only", "partial")
        ):
            return None  # a variant of a named schema: inline it
        name = cls.__name__.removesuffix("Schema") or cls.__name__
        if taken.setdefault(name, cls) is not cls:
            name = f"{cls.__module__.removeprefix('mediation.')}.{name}"
            taken[name] = cls
        return name

    return resolve


def _collect_paths(app: Flask) -> dict[str, tuple[list[dict], dict[str, Any]]]:
    """Return OpenAPI path -> (path parameters, operations) for the ``api`` rules."""
    paths: dict[str, tuple[list[dict], dict[str, Any]]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        view = app.view_functions[rule.endpoint]
        path, parameters = _openapi_path(rule.rule)
        _, operations = paths.setdefault(path, (parameters, {}))
        methods = sorted(m.lower() for m in rule.methods or () if m.lower() in METHODS)
        for method in methods:
            operation_id = rule.endpoint.removeprefix("api.")
            if len(methods) > 1:
                operation_id += "_" + method
            operations[method] = _operation(view, method, operation_id)
    return paths


def _openapi_path(rule: str) -> tuple[str, list[dict]]:
    """Turn ``/cases/<int:case_id>`` into ``/cases/{case_id}`` and its parameters."""
    parameters = []
    for match in _VARIABLE.finditer(rule):
        converter = (match["converter"] or "string").split("(", 1)[0]
        kind = {"int": "integer", "float": "number"}.get(converter, "string")
        parameters.append(
            {
                "in": "path",
                "name": match["name"],
                "required": True,
                "schema": {"type": kind},
            }
        )
    return _VARIABLE.sub(lambda m: "{" + m["name"] + "}", rule), parameters


def _operation(view: Callable, method: str, operation_id: str) -> dict[str, Any]:
    """Return the OpenAPI operation of ``view`` for ``method`` from its docstring."""
    summary, description = _describe(view.__doc__ or "", operation_id)
    try:
        operation = load_operations_from_docstring(view.__doc__ or "").get(method)
    except Exception as exc:  # a YAML error must not hide the other endpoints
        return _broken(summary, operation_id, f"docstring YAML: {exc}")
    if operation is None:
        operation = {}
    if not isinstance(operation, dict):
        return _broken(
            summary, operation_id, f"the {method} operation is not a mapping"
        )
    operation.setdefault("summary", summary)
    if description:
        operation.setdefault("description", description)
    operation.setdefault("operationId", operation_id)
    operation.setdefault("tags", [view.__module__.split(".")[1]])
    operation.setdefault(
        "responses", {"200": {"description": "Success."}, "default": ERROR_REF}
    )
    try:
        _resolve_schema_names(operation)
    except SpecError as exc:
        return _broken(summary, operation_id, str(exc))
    return operation


def _describe(doc: str, fallback: str) -> tuple[str, str]:
    """Return the summary (first line) and the prose before ``---`` of a docstring."""
    lines = inspect.cleandoc(doc).splitlines() if doc.strip() else []
    if not lines:
        return fallback, ""
    prose = []
    for line in lines[1:]:
        if line.strip().startswith("---"):
            break
        prose.append(line)
    return lines[0].strip(), "\n".join(prose).strip()


def _broken(summary: str, operation_id: str, reason: str) -> dict[str, Any]:
    logger.error("OpenAPI: %s: %s", operation_id, reason)
    return {
        "summary": summary,
        "operationId": operation_id,
        "responses": {"default": ERROR_REF},
        "x-spec-error": reason,
    }


def _resolve_schema_names(node: Any) -> None:
    """Replace marshmallow class names by classes, refusing unknown or ambiguous ones.

    :raise SpecError: for a name no class has, or that several classes share.
    """
    if isinstance(node, list):
        for item in node:
            _resolve_schema_names(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in _SCHEMA_KEYS and isinstance(value, str):
            node[key] = _schema_class(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            node[key] = [_schema_class(v) if isinstance(v, str) else v for v in value]
            _resolve_schema_names(node[key])
        else:
            _resolve_schema_names(value)


def _schema_class(name: str) -> type:
    try:
        found = class_registry.get_class(name, all=True)
    except RegistryError:
        raise SpecError(f"no marshmallow schema is named {name!r}") from None
    classes = found if isinstance(found, list) else [found]
    if len({(c.__module__, c.__qualname__) for c in classes}) > 1:
        raise SpecError(
            f"several schemas are named {name!r}; use the module-qualified path"
        )
    return classes[-1]


def _add_path(
    spec: APISpec, path: str, parameters: list[dict], operations: dict[str, Any]
) -> None:
    """Add one path; an operation that apispec refuses is kept as a broken stub."""
    for method, operation in operations.items():
        try:
            spec.path(path=path, operations={method: operation}, parameters=parameters)
            # apispec copies the operation; check what it stored.
            json.dumps(spec.to_dict()["paths"][path][method])
        except Exception as exc:
            broken = _broken(
                str(operation.get("summary", path)),
                str(operation.get("operationId", path)),
                f"{type(exc).__name__}: {exc}",
            )
            spec.path(path=path, operations={method: broken}, parameters=parameters)
