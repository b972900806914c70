"""Slim-style attention layers (issue 3 fills it)."""
__all__ = []
