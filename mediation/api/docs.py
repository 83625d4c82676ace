"""The OpenAPI document and its Swagger UI page (vendored assets, no CDN)."""

from __future__ import annotations

from flask import jsonify, render_template

from mediation.api import bp
from mediation.api.spec import get_spec


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document of this API.
    ---
    get:
      security: []
      responses:
        200:
          description: The document.
          content:
            application/json:
              schema: {type: object}
    """
    return jsonify(get_spec())


@bp.get("/docs")
def docs():
    """The interactive API documentation (Swagger UI).
    ---
    get:
      security: []
      responses:
        200:
          description: An HTML page.
          content:
            text/html:
              schema: {type: string}
    """
    return render_template("api/docs.html")
