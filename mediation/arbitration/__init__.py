"""Online arbitration: awards, information requests, objections, corrections."""

from flask import Blueprint

bp = Blueprint("arbitration", __name__)
