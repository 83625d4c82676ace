"""Service-level deadlines: which stage a case is in and when it ends."""
