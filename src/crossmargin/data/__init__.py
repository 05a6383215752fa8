"""Bundled excerpts of real market history (see README.md in this folder for the source)."""
