"""Accounts: users and roles, sign-in, API tokens, merchant-staff claims."""

from flask import Blueprint

bp = Blueprint("auth", __name__)
