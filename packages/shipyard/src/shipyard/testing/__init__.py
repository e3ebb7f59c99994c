"""Helpers for testing code built on Shipyard (and for Shipyard's own tests)."""
