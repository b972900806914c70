"""The suite really runs in the behaviour it was asked for, in this process and
in the Python subprocesses tests start (``--tf-behavior``, tests/conftest.py)."""
import subprocess
import sys

import tensorflow as tf

PROBE = ("import tensorflow as tf\n"
         "from tensorflow.python import tf2\n"
         "print('v2' if tf2.enabled() else 'v1',"
         " tf.compat.v1.resource_variables_enabled(),"
         " tf.executing_eagerly())\n")


def _state():
    from tensorflow.python import tf2
    return ('v2' if tf2.enabled() else 'v1', tf.compat.v1.resource_variables_enabled(),
            tf.executing_eagerly())


def test_this_process_runs_in_the_requested_behavior(tf_behavior):
    behavior, resource_variables, eager = _state()
    assert behavior == tf_behavior
    assert resource_variables == (tf_behavior == 'v2')
    assert eager == (tf_behavior == 'v2')
    # Under v1 behaviour static shapes hold Dimension objects, as TF1 code saw them.
    with tf.Graph().as_default():
        dim = tf.compat.v1.placeholder(tf.float32, [2, 3]).shape[1]
    assert isinstance(dim, tf.compat.v1.Dimension) == (tf_behavior == 'v1')


def test_subprocesses_run_in_the_same_behavior(tf_behavior):
    out = subprocess.run([sys.executable, '-c', PROBE], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    assert out == [tf_behavior, str(tf_behavior == 'v2'), str(tf_behavior == 'v2')]
