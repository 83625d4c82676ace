"""Notifications: the in-app bell and e-mail."""

from flask import Blueprint

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
