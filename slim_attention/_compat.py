"""Compatibility layer for tf-slim on current TensorFlow and NumPy (issue 2 fills it)."""


def apply():
    """Applies every repair; idempotent and additive."""
