"""slim.batch_norm through slim_attention on current TensorFlow, checked against NumPy.

tf-slim 1.1.0's batch_norm fails on TF 2.21 twice over: the layer path imports
``tf_keras.legacy_tf_layers`` (moved to ``tf_keras.src``) and a tensor
``is_training`` reaches ``ops.Tensor``/``control_flow_ops.cond`` (moved).
"""
import numpy as np
import pytest
import tensorflow as tf

import slim_attention as slim

tf1 = tf.compat.v1

EPS = 0.001  # slim.batch_norm's default epsilon.
DECAY = 0.9

# The four code paths of tf_slim.layers.batch_norm:
#   default                      -> the BatchNormalization layer (fused kernel), UPDATE_OPS
#   fused=False                  -> the BatchNormalization layer (plain ops), UPDATE_OPS
#   updates_collections=None     -> tf-slim's own _fused_batch_norm, in-place updates
#   fused=False, updates_coll=None -> tf-slim's own unfused code, in-place updates
PATHS = {
    "layer_fused": dict(),
    "layer_unfused": dict(fused=False),
    "slim_fused_inplace": dict(updates_collections=None),
    "slim_unfused_inplace": dict(fused=False, updates_collections=None),
}


def _inputs(seed=0):
    return (np.random.RandomState(seed).randn(4, 3, 3, 2) * 2.0 + 1.0).astype(np.float32)


def _numpy_batch_norm(x, mean, var, beta=0.0, gamma=1.0):
    return gamma * (x - mean) / np.sqrt(var + EPS) + beta


def _expected_moving_variance(x, fused):
    """TF1 semantics: the fused kernel feeds the moving average the unbiased
    (n / (n - 1)) batch variance, the unfused ops the biased one."""
    var = x.var(axis=(0, 1, 2))
    if fused:
        n = x.shape[0] * x.shape[1] * x.shape[2]
        var = var * n / (n - 1.0)
    return DECAY * 1.0 + (1.0 - DECAY) * var


def _bn_variables():
    return {v.op.name: v for v in tf1.global_variables()}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_bool_is_training_normalises_and_updates_moving_stats(graph, path):
    x = _inputs()
    inputs = tf1.placeholder(tf.float32, x.shape)
    outputs = slim.batch_norm(inputs, decay=DECAY, scale=True, is_training=True,
                              **PATHS[path])
    names = sorted(_bn_variables())
    assert names == ["BatchNorm/beta", "BatchNorm/gamma", "BatchNorm/moving_mean",
                     "BatchNorm/moving_variance"]
    update_ops = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
    if PATHS[path].get("updates_collections", "default") is None:
        assert update_ops == []  # updated in place, as tf-slim documents
    else:
        assert len(update_ops) == 2  # moving_mean and moving_variance
    variables = _bn_variables()
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        got, _ = sess.run([outputs, update_ops], {inputs: x})
        moving_mean, moving_var = sess.run([variables["BatchNorm/moving_mean"],
                                            variables["BatchNorm/moving_variance"]])
    np.testing.assert_allclose(
        got, _numpy_batch_norm(x, x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))),
        rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(moving_mean, (1.0 - DECAY) * x.mean(axis=(0, 1, 2)),
                               rtol=1e-5, atol=1e-6)
    fused = PATHS[path].get("fused", True)
    np.testing.assert_allclose(moving_var, _expected_moving_variance(x, fused),
                               rtol=1e-5)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_placeholder_is_training_switches_batch_and_moving_statistics(graph, path):
    x = _inputs(1)
    inputs = tf1.placeholder(tf.float32, x.shape)
    is_training = tf1.placeholder(tf.bool, [], name="is_training")
    outputs = slim.batch_norm(inputs, decay=DECAY, scale=True, center=True,
                              is_training=is_training, **PATHS[path])
    update_ops = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
    variables = _bn_variables()
    moving_mean = np.array([0.5, -1.0], np.float32)
    moving_var = np.array([2.0, 0.25], np.float32)
    beta = np.array([0.1, 0.2], np.float32)
    gamma = np.array([1.5, 0.5], np.float32)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        for name, value in (("moving_mean", moving_mean), ("moving_variance", moving_var),
                            ("beta", beta), ("gamma", gamma)):
            variables["BatchNorm/" + name].load(value, sess)
        inference = sess.run(outputs, {inputs: x, is_training: False})
        # Inference must not move the statistics, in-place path included.
        after_inference = sess.run(variables["BatchNorm/moving_mean"])
        training, _ = sess.run([outputs, update_ops], {inputs: x, is_training: True})
        after_training = sess.run(variables["BatchNorm/moving_mean"])
    np.testing.assert_allclose(
        inference, _numpy_batch_norm(x, moving_mean, moving_var, beta, gamma),
        rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        training, _numpy_batch_norm(x, x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2)),
                                    beta, gamma), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(after_inference, moving_mean)
    np.testing.assert_allclose(
        after_training, DECAY * moving_mean + (1 - DECAY) * x.mean(axis=(0, 1, 2)),
        rtol=1e-5)


def test_train_op_with_update_ops_learns_and_checkpoint_round_trips(tmp_path):
    """A conv + batch_norm model trained the TF1 way (UPDATE_OPS as control
    dependencies), saved with Saver and restored into a fresh graph."""
    rng = np.random.RandomState(2)
    x = rng.rand(8, 6, 6, 3).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int64)
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(0)
        images = tf1.placeholder(tf.float32, [None, 6, 6, 3])
        labels = tf1.placeholder(tf.int64, [None])
        is_training = tf1.placeholder_with_default(False, [])
        with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm,
                            normalizer_params={"is_training": is_training,
                                               "decay": DECAY}):
            net = slim.conv2d(images, 4, [3, 3], scope="conv1")
        logits = tf.squeeze(slim.conv2d(net, 2, [6, 6], padding="VALID",
                                        activation_fn=None, scope="logits"), [1, 2])
        loss = tf1.losses.sparse_softmax_cross_entropy(labels, logits)
        update_ops = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
        with tf.control_dependencies(update_ops):
            train_op = tf1.train.GradientDescentOptimizer(0.5).minimize(loss)
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            feed = {images: x, labels: y, is_training: True}
            first = sess.run(loss, feed)
            for _ in range(5):
                sess.run(train_op, feed)
            last = sess.run(loss, feed)
            saved = {v.op.name: sess.run(v) for v in tf1.global_variables()}
            inference = sess.run(logits, {images: x})
            path = saver.save(sess, str(tmp_path / "model.ckpt"))
    assert last < first
    assert len(update_ops) == 2
    # The moving statistics moved away from their initial 0 / 1.
    assert np.abs(saved["conv1/BatchNorm/moving_mean"]).max() > 0
    stored = dict(tf1.train.list_variables(path))
    for name in ("conv1/weights", "conv1/BatchNorm/beta",
                 "conv1/BatchNorm/moving_mean", "conv1/BatchNorm/moving_variance"):
        assert name in stored
    assert "conv1/biases" not in stored  # a normalizer_fn replaces the biases
    restored_graph = tf.Graph()
    with restored_graph.as_default():
        images = tf1.placeholder(tf.float32, [None, 6, 6, 3])
        with slim.arg_scope([slim.conv2d], normalizer_fn=slim.batch_norm,
                            normalizer_params={"is_training": False, "decay": DECAY}):
            net = slim.conv2d(images, 4, [3, 3], scope="conv1")
        logits = tf.squeeze(slim.conv2d(net, 2, [6, 6], padding="VALID",
                                        activation_fn=None, scope="logits"), [1, 2])
        with tf1.Session() as sess:
            tf1.train.Saver().restore(sess, path)
            for variable in tf1.global_variables():
                np.testing.assert_array_equal(sess.run(variable), saved[variable.op.name])
            np.testing.assert_allclose(sess.run(logits, {images: x}), inference,
                                       rtol=1e-5, atol=1e-6)
