"""The merchant registry: shops, service merchants and platform operators."""

from flask import Blueprint

bp = Blueprint("merchants", __name__, url_prefix="/merchants")
