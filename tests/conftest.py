"""Shared test setup: quiet TensorFlow, a fresh graph for every test, and a
runner for scripts that must run in processes of their own."""
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


@pytest.fixture
def graph():
    """A fresh default graph, so tests never share variables or ops."""
    g = tf.Graph()
    with g.as_default():
        yield g


@pytest.fixture
def run_in_new_processes(tmp_path):
    """Runs Python scripts one after another, each in a fresh interpreter with
    ``tmp_path`` as ``sys.argv[1]`` (to pass files between them); a failing
    script fails the test with its stderr. Returns the last script's stdout."""
    def run(*scripts):
        out = ''
        for script in scripts:
            proc = subprocess.run([sys.executable, '-c', script, str(tmp_path)],
                                  capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stderr[-3000:]
            out = proc.stdout
        return out
    return run
