"""tf-slim's conditionals can be differentiated after their graph has run, as in TF1.

TF1 users build a network with a placeholder ``is_training``, run it (evaluate,
or restore and check), and only then add ``minimize`` and train. With TF2's
single-op cond that fails ("Connecting to invalid output 1 of source node
cond ..."). Two repairs cover tf-slim: the re-added ``control_flow_ops.cond``
(``utils.smart_cond``: batch norm's own paths, metrics, decoders) and the
call context that makes TensorFlow's in-tree legacy layers (``slim.dropout``)
count as Keras layers. The reference is TF1's behaviour: the same graph with
``minimize`` built before the first run, which works in every TensorFlow.
"""
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.ops import control_flow_ops
from tensorflow.python.ops import control_flow_util_v2
from tensorflow.python.util import keras_deps

import slim_attention as slim
from slim_attention import _compat
from slim_attention import _compat_control_flow

tf1 = tf.compat.v1

# tf_slim.layers.batch_norm's code paths that build their own cond (via
# utils.smart_cond) and the layer paths (tf-keras layers), with a tensor is_training.
BATCH_NORMS = {
    "layer_fused": dict(),
    "layer_unfused": dict(fused=False),
    "slim_fused_inplace": dict(updates_collections=None),
    "slim_unfused_inplace": dict(fused=False, updates_collections=None),
}


def _inputs():
    return np.random.RandomState(0).randn(4, 3, 3, 2).astype(np.float32)


def _batch_norm_step(kwargs, minimize_after_run):
    """One SGD step on a conv + slim.batch_norm(is_training=placeholder) net.

    Returns the trainable variables after the step, and the moving mean.
    """
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        x = tf1.placeholder(tf.float32, [4, 3, 3, 2])
        is_training = tf1.placeholder(tf.bool, [])
        net = slim.conv2d(x, 3, [1, 1], activation_fn=None, scope="conv")
        net = slim.batch_norm(net, is_training=is_training, scale=True, **kwargs)
        loss = tf.reduce_mean(tf.square(net - 0.5) * tf.range(3, dtype=tf.float32))
        optimizer = tf1.train.GradientDescentOptimizer(0.5)
        with tf1.Session() as sess:
            if not minimize_after_run:
                train = slim.learning.create_train_op(loss, optimizer, global_step=None)
            sess.run(tf1.global_variables_initializer())
            inference = sess.run(loss, {x: _inputs(), is_training: False})
            if minimize_after_run:
                train = slim.learning.create_train_op(loss, optimizer, global_step=None)
                sess.run(tf1.variables_initializer(optimizer.variables()))
            sess.run(train, {x: _inputs(), is_training: True})
            moving_mean = [v for v in tf1.global_variables() if "moving_mean" in v.name]
            return inference, sess.run(tf1.trainable_variables()), sess.run(moving_mean)


@pytest.mark.parametrize("path", sorted(BATCH_NORMS))
def test_batch_norm_with_placeholder_is_training_trains_after_a_forward_run(path):
    got = _batch_norm_step(BATCH_NORMS[path], minimize_after_run=True)
    want = _batch_norm_step(BATCH_NORMS[path], minimize_after_run=False)
    assert np.isfinite(got[0])
    assert got[0] == pytest.approx(want[0], rel=1e-6)
    for g, w in zip(got[1] + got[2], want[1] + want[2]):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_dropout_with_placeholder_is_training_trains_after_a_forward_run(graph):
    """slim.dropout (TensorFlow's in-tree legacy Dropout layer)."""
    x = tf.constant(np.random.RandomState(1).rand(8, 16).astype(np.float32) + 0.5)
    is_training = tf1.placeholder(tf.bool, [])
    scale = tf1.get_variable("scale", initializer=2.0)
    out = slim.dropout(x * scale, keep_prob=0.5, is_training=is_training)
    loss = tf.reduce_sum(out)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        np.testing.assert_allclose(sess.run(out, {is_training: False}),
                                   sess.run(x) * 2.0, rtol=1e-6)
        grad, = tf1.gradients(loss, [scale])
        train = tf1.train.GradientDescentOptimizer(0.001).minimize(loss)
        out_value, grad_value, _ = sess.run([out, grad, train], {is_training: True})
        # d/dscale sum(mask * x * scale / keep) = sum(out) / scale, on this step's mask.
        assert grad_value == pytest.approx(out_value.sum() / 2.0, rel=1e-5)
        assert 0 < np.count_nonzero(out_value) < out_value.size
        assert sess.run(scale) == pytest.approx(2.0 - 0.001 * grad_value, rel=1e-6)


def test_smart_cond_tensor_is_differentiable_after_a_run(graph):
    """tf_slim.layers.utils.smart_cond, the cond under slim's is_training tensors."""
    from tf_slim.layers import utils

    flag = tf1.placeholder(tf.bool, [])
    w = tf1.get_variable("w", initializer=3.0)
    y = utils.smart_cond(flag, lambda: tf.square(w), lambda: tf.sin(w))
    with tf1.Session() as sess:
        sess.run(w.initializer)
        assert sess.run(y, {flag: True}) == pytest.approx(9.0)
        grad, = tf1.gradients(y, [w])
        assert sess.run(grad, {flag: True}) == pytest.approx(6.0)
        assert sess.run(grad, {flag: False}) == pytest.approx(np.cos(3.0), rel=1e-6)


def test_cond_keeps_an_explicit_output_all_intermediates_setting(graph):
    assert control_flow_ops.cond is _compat_control_flow.cond_differentiable_after_run
    flag = tf1.placeholder(tf.bool, [])
    tf1.experimental.output_all_intermediates(False)
    try:
        control_flow_ops.cond(flag, lambda: tf.constant(1.0), lambda: tf.constant(2.0))
        assert control_flow_util_v2._EXPERIMENTAL_OUTPUT_ALL_INTERMEDIATES_OVERRIDE is False
    finally:
        tf1.experimental.output_all_intermediates(None)
    control_flow_ops.cond(flag, lambda: tf.constant(1.0), lambda: tf.constant(2.0))
    assert control_flow_util_v2._EXPERIMENTAL_OUTPUT_ALL_INTERMEDIATES_OVERRIDE is None


def test_call_context_answers_as_tf_keras_outside_legacy_layers():
    from tensorflow.python.keras.engine import base_layer_utils as in_tree
    from tf_keras.src.engine import base_layer_utils as tf_keras_utils

    registered = keras_deps.get_call_context_function()
    assert registered._slim_attention_wraps is tf_keras_utils.call_context
    assert registered() is tf_keras_utils.call_context()
    assert registered().layer is None and in_tree.call_context().layer is None
    assert _compat.apply() == []  # wrapped once, not again
    assert keras_deps.get_call_context_function() is registered
