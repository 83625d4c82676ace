"""Supervision routes (issue #7): export_views."""
