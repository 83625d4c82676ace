"""Supervision: the regulator's dashboard and statistics, mass-complaint alerts and
case groups, the risk list and warning interviews, complaint text tagging,
consumer warnings, exports and the audit log of regulator actions."""

from flask import Blueprint

bp = Blueprint("analytics", __name__)
