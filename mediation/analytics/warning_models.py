"""Tables of supervision (issue #7): warning_models."""
