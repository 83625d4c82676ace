"""Credit records: ledger, score and grade, dishonesty list, repair, feed."""

from flask import Blueprint

bp = Blueprint("credit", __name__)
