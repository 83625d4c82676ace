"""Supervision routes (issue #7): warnings_api."""
