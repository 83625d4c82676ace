"""Tables of supervision (issue #7): risk_models."""
