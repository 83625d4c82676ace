"""Routes of this module are added in the next commits."""
