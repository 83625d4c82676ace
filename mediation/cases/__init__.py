"""Cases: filing, the lifecycle, the timeline, evidence and direct settlement."""

from flask import Blueprint

bp = Blueprint("cases", __name__)
