"""Tables of supervision (issue #7): stats_models."""
