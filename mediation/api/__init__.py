"""The JSON API under /api/v1 (routes live in each domain's ``api`` module)."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
