"""The OpenAPI document and the Swagger UI page (vendored, no CDN)."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, Flask

from mediation.api.spec import EXTENSION_KEY, build_spec, get_spec

ROOT = Path(__file__).resolve().parent.parent
OWN_OPERATIONS = {
    ("/api/v1/cases", "post"),
    ("/api/v1/cases", "get"),
    ("/api/v1/cases/{case_id}", "get"),
    ("/api/v1/cases/{case_id}/actions", "post"),
    ("/api/v1/cases/{case_id}/evidence", "post"),
    ("/api/v1/cases/{case_id}/evidence/{evidence_id}", "get"),
    ("/api/v1/cases/{case_id}/events", "get"),
    ("/api/v1/openapi.json", "get"),
    ("/api/v1/docs", "get"),
}
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


def _spec(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.is_json
    return response.get_json()


def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_document_is_openapi_3_with_our_operations(client):
    spec = _spec(client)
    assert spec["openapi"].startswith("3.0")
    assert spec["info"]["title"] and spec["info"]["version"]
    found = {(path, method) for path, method, _ in _operations(spec)}
    assert OWN_OPERATIONS <= found
    for path, method, operation in _operations(spec):
        assert "responses" in operation, (path, method)
        assert operation.get("summary"), (path, method)
    ids = [op["operationId"] for _, _, op in _operations(spec)]
    assert len(ids) == len(set(ids))


def test_every_api_route_is_documented_and_none_is_broken(app, client):
    spec = _spec(client)
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = re.sub(r"<(?:[^:<>]+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in spec["paths"], rule.rule
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = spec["paths"][path][method.lower()]
            assert "x-spec-error" not in operation, (path, method, operation)


def test_every_reference_resolves(client):
    spec = _spec(client)
    for ref in set(_refs(spec)):
        assert ref.startswith("#/"), ref
        node = spec
        for part in ref[2:].split("/"):
            assert part in node, ref
            node = node[part]


def test_components_describe_errors_and_authentication(client):
    spec = _spec(client)
    components = spec["components"]
    error = components["schemas"]["Error"]
    assert error["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    body = components["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"code", "message", "fields"}
    assert set(body["required"]) == {"code", "message"}
    response = components["responses"]["Error"]
    schema = response["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Error"}
    assert components["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": components["securitySchemes"]["bearerAuth"]["description"],
    }
    assert components["securitySchemes"]["cookieAuth"]["in"] == "cookie"


def test_case_operations_name_their_schemas(client):
    spec = _spec(client)
    paths = spec["paths"]
    filing = paths["/api/v1/cases"]["post"]
    body_schema = filing["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/FileCase"}
    created = filing["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/CaseFiled"}
    assert filing["responses"]["422"] == {"$ref": "#/components/responses/Error"}
    assert any(p["name"] == "Idempotency-Key" for p in filing["parameters"])

    schemas = spec["components"]["schemas"]
    file_case = schemas["FileCase"]
    assert file_case["properties"]["amount_paid"]["type"] == "integer"
    assert file_case["properties"]["order_date"]["format"] == "date"
    assert "claim" in file_case["required"]
    case = schemas["Case"]["properties"]
    for name in (
        "allowed_actions",
        "timeline",
        "evidence",
        "offers",
        "versions",
        "due_at",
    ):
        assert name in case
    action = schemas["CaseAction"]
    names = {n for v in action["oneOf"] for n in v["properties"]["action"]["enum"]}
    assert {
        "offer",
        "accept_offer",
        "amend",
        "withdraw",
        "rate",
        "link_merchant",
    } <= names
    item = paths["/api/v1/cases/{case_id}"]
    assert item["parameters"][0]["name"] == "case_id"
    assert item["parameters"][0]["schema"]["type"] == "integer"
    upload = paths["/api/v1/cases/{case_id}/evidence"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "413" in upload["responses"] and "415" in upload["responses"]


def test_document_is_built_once_per_app(app, client):
    _spec(client)
    cached = app.extensions[EXTENSION_KEY]
    _spec(client)
    assert app.extensions[EXTENSION_KEY] is cached


def test_broken_or_missing_docstrings_do_not_hide_endpoints():
    bp = Blueprint("api", __name__, url_prefix="/api/v1")

    @bp.get("/plain/<int:item_id>")
    def plain(item_id):
        """Show an item without any YAML."""

    @bp.get("/bad-yaml")
    def bad_yaml():
        """Broken.
        ---
        get: [unclosed
        """

    @bp.get("/unknown-schema")
    def unknown_schema():
        """Names a schema nobody wrote.
        ---
        get:
          responses:
            200:
              description: x
              content: {application/json: {schema: NoSuchThingSchema}}
        """

    @bp.get("/good")
    def good():
        """Good one.
        ---
        get:
          responses:
            200:
              description: fine
              content: {application/json: {schema: CaseSummarySchema}}
        """

    def no_docstring():
        return ""

    bp.add_url_rule("/bare", view_func=no_docstring, methods=["GET", "POST"])

    app = Flask(__name__)
    app.register_blueprint(bp)
    spec = build_spec(app)
    paths = spec["paths"]
    plain_op = paths["/api/v1/plain/{item_id}"]["get"]
    assert plain_op["summary"] == "Show an item without any YAML."
    assert "x-spec-error" not in plain_op
    assert paths["/api/v1/plain/{item_id}"]["parameters"][0]["name"] == "item_id"
    assert "x-spec-error" in paths["/api/v1/bad-yaml"]["get"]
    assert "NoSuchThingSchema" in paths["/api/v1/unknown-schema"]["get"]["x-spec-error"]
    good_schema = paths["/api/v1/good"]["get"]["responses"]["200"]["content"]
    assert good_schema["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CaseSummary"
    }
    assert {"get", "post"} <= set(paths["/api/v1/bare"])
    assert paths["/api/v1/bare"]["post"]["operationId"] == "no_docstring_post"


def test_get_spec_uses_the_current_app(app):
    with app.app_context():
        assert get_spec()["openapi"].startswith("3.0")


# The documentation page -------------------------------------------------------------


def test_docs_page_serves_vendored_swagger_ui_without_cdn(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert not re.search(r"https?://", page), re.findall(r"https?://\S+", page)
    assert "//cdn" not in page and "unpkg" not in page and "jsdelivr" not in page
    assert "/api/v1/openapi.json" in page
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    assert any(a.endswith("swagger-ui.css") for a in assets)
    for asset in assets:
        with client.get(asset) as served:
            assert served.status_code == 200, asset
            assert len(served.data) > 1000, asset


def test_vendored_assets_are_recorded_with_their_licence():
    vendor = ROOT / "static" / "vendor"
    versions = (vendor / "VERSIONS").read_text(encoding="utf-8").splitlines()
    entry = [line for line in versions if line.startswith("swagger-ui-dist ")]
    assert len(entry) == 1
    assert re.fullmatch(r"swagger-ui-dist 5\.\d+\.\d+", entry[0])
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"):
        assert (vendor / "swagger-ui" / name).is_file(), name
    bundle = (vendor / "swagger-ui" / "swagger-ui-bundle.js").read_text(
        encoding="utf-8"
    )
    assert "sourceMappingURL" not in bundle[-300:]
