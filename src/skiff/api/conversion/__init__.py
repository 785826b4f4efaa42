"""Conversions between representations of one stored kind."""
