"""Supervision routes (issue #7): audit_views."""
