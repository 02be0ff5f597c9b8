"""Helpers every layer uses: atomic file writes, user-facing errors, units, keyed random draws.

Imports nothing else of common.
"""
