"""Segments: conditions on who people are and what they did, kept current (see docs/segments.md)."""
