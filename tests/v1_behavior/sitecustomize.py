"""Puts every Python process the tests start into TF1 behaviour.

``tests/conftest.py`` prepends this folder to ``PYTHONPATH`` when the suite
runs with ``--tf-behavior=v1``, so scripts and command-line tools started in a
subprocess (``python -m vgg_patch.train``, example scripts, two-process
checks) run after ``tf.compat.v1.disable_v2_behavior()`` exactly like the
test process itself: the first line ``tf_upgrade_v2`` writes in users' code.
"""
import os

if os.environ.get("TEST_TF_BEHAVIOR") == "v1":
    import tensorflow.compat.v1 as _tf

    _tf.disable_v2_behavior()
