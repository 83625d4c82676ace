"""Tables of supervision (issue #7): alert_models."""
