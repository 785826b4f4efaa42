"""Scheduling plugins, one per module, each named and behaving as its upstream namesake."""
