"""Supervision routes (issue #7): alerts_api."""
