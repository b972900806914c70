"""Shared test setup: quiet TensorFlow, and a fresh graph for every test."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


@pytest.fixture
def graph():
    """A fresh default graph, so tests never share variables or ops."""
    g = tf.Graph()
    with g.as_default():
        yield g
