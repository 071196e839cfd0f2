"""Incremental updates: a new edge table against an earlier run's, so that only what changed is
walked and trained again (diff.py: what changed, and which nodes are near it)."""
