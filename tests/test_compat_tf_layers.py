"""tf.compat.v1.layers after ``import slim_attention``: graph mode, TF1 names, NumPy check.

On TF 2.21 with Keras 3 every ``tf.compat.v1.layers`` function raises
"`dense` is not available with Keras 3"; slim_attention routes them to
tf-keras's legacy layers, as ``TF_USE_LEGACY_KERAS=1`` would have.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

import slim_attention  # noqa: F401  (applies the compatibility layer)

tf1 = tf.compat.v1


def _numpy_conv2d_same(x, kernel, bias):
    """Stride-1 'SAME' NHWC convolution (cross-correlation, as TensorFlow)."""
    kh, kw = kernel.shape[:2]
    pad = np.pad(x, ((0, 0), (kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2),
                     (0, 0)))
    out = np.zeros(x.shape[:3] + (kernel.shape[3],), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = pad[:, i:i + x.shape[1], j:j + x.shape[2], :]
            out += np.einsum("nhwc,cd->nhwd", patch, kernel[i, j])
    return out + bias


def _numpy_max_pool_2x2(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _build(images, training):
    net = tf1.layers.conv2d(images, 4, 3, padding="same", activation=tf.nn.relu)
    net = tf1.layers.batch_normalization(net, training=training)
    net = tf1.layers.max_pooling2d(net, 2, 2)
    net = tf1.layers.flatten(net)
    net = tf1.layers.dropout(net, rate=0.5, training=training)
    return tf1.layers.dense(net, 3)


def test_layers_build_train_and_checkpoint_with_tf1_names(tmp_path):
    rng = np.random.RandomState(0)
    x = rng.rand(8, 4, 4, 2).astype(np.float32)
    y = rng.randint(0, 3, size=8).astype(np.int64)
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(1)
        images = tf1.placeholder(tf.float32, [None, 4, 4, 2])
        labels = tf1.placeholder(tf.int64, [None])
        training = tf1.placeholder_with_default(False, [])
        logits = _build(images, training)
        loss = tf1.losses.sparse_softmax_cross_entropy(labels, logits)
        update_ops = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
        with tf.control_dependencies(update_ops):
            train_op = tf1.train.GradientDescentOptimizer(0.2).minimize(loss)
        variables = {v.op.name: v for v in tf1.global_variables()}
        names = sorted(variables)
        trainable = sorted(v.op.name for v in tf1.trainable_variables())
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            values = {v.op.name: sess.run(v) for v in tf1.global_variables()}
            inference = sess.run(logits, {images: x})
            first = sess.run(loss, {images: x, labels: y})
            for _ in range(20):
                sess.run(train_op, {images: x, labels: y, training: True})
            last = sess.run(loss, {images: x, labels: y})
            moving_mean = sess.run(variables["batch_normalization/moving_mean"])
            trained_inference = sess.run(logits, {images: x})
            path = saver.save(sess, str(tmp_path / "layers.ckpt"))
    assert names == [
        "batch_normalization/beta", "batch_normalization/gamma",
        "batch_normalization/moving_mean", "batch_normalization/moving_variance",
        "conv2d/bias", "conv2d/kernel", "dense/bias", "dense/kernel"]
    assert trainable == ["batch_normalization/beta", "batch_normalization/gamma",
                         "conv2d/bias", "conv2d/kernel", "dense/bias", "dense/kernel"]
    assert len(update_ops) == 2
    # Independent check of the untrained forward pass (inference mode) in NumPy.
    net = np.maximum(_numpy_conv2d_same(x, values["conv2d/kernel"],
                                        values["conv2d/bias"]), 0)
    net = (values["batch_normalization/gamma"]
           * (net - values["batch_normalization/moving_mean"])
           / np.sqrt(values["batch_normalization/moving_variance"] + 1e-3)
           + values["batch_normalization/beta"])
    net = _numpy_max_pool_2x2(net).reshape(8, -1)
    expected = net @ values["dense/kernel"] + values["dense/bias"]
    np.testing.assert_allclose(inference, expected, rtol=1e-4, atol=1e-5)
    assert last < first
    assert np.abs(moving_mean).max() > 0  # UPDATE_OPS ran during training
    # Saver round trip into a fresh graph built by the same code.
    assert sorted(name for name, _ in tf1.train.list_variables(path)) == names
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, 4, 4, 2])
        logits = _build(images, False)
        with tf1.Session() as sess:
            tf1.train.Saver().restore(sess, path)
            np.testing.assert_allclose(sess.run(logits, {images: x}), trained_inference,
                                       rtol=1e-5, atol=1e-6)


def test_dense_matches_numpy_and_dropout_scales_kept_units(graph):
    x = np.random.RandomState(3).rand(200, 5).astype(np.float32)
    inputs = tf1.placeholder(tf.float32, [None, 5])
    with tf1.variable_scope("head"):
        out = tf1.layers.dense(inputs, 2, activation=tf.nn.sigmoid)
    dropped = tf1.layers.dropout(inputs, rate=0.25, training=True, seed=4)
    kept = tf1.layers.dropout(inputs, rate=0.25, training=False)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        variables = {v.op.name: v for v in tf1.global_variables()}
        kernel, bias = sess.run([variables["head/dense/kernel"],
                                 variables["head/dense/bias"]])
        got, got_dropped, got_kept = sess.run([out, dropped, kept], {inputs: x})
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-(x @ kernel + bias))), rtol=1e-5)
    np.testing.assert_array_equal(got_kept, x)
    nonzero = got_dropped != 0
    np.testing.assert_allclose(got_dropped[nonzero], x[nonzero] / 0.75, rtol=1e-6)
    assert abs(nonzero.mean() - 0.75) < 0.05  # 1000 units, keep probability 0.75


def test_routing_works_whatever_the_import_order():
    """A fresh interpreter: TensorFlow imported first, ``tf.compat.v1.layers``
    touched (and failing) before slim_attention, ``tensorflow.compat.v1``
    imported by name after it; tf.keras stays Keras 3."""
    script = textwrap.dedent("""
        import tensorflow as tf
        early_v1 = tf.compat.v1
        try:
            early_v1.layers.dense
        except AttributeError as error:
            print("BEFORE:", error)
        import slim_attention
        import tensorflow.compat.v1 as tf1
        functions = {early_v1.layers.dense, tf1.layers.dense, tf.compat.v1.layers.dense}
        print("SAME:", len(functions) == 1)
        print("MODULE:", tf1.layers.dense.__module__)
        print("KERAS:", type(tf.keras.layers.Dense).__module__, tf.keras.__name__)
        with tf.Graph().as_default():
            y = tf1.layers.dense(tf1.placeholder(tf.float32, [1, 2]), 3)
            print("NAMES:", sorted(v.op.name for v in tf1.global_variables()))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_USE_LEGACY_KERAS", None)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines()
                 if ": " in line)
    assert "not available with Keras 3" in lines["BEFORE"]  # the failure being repaired
    assert lines["SAME"] == "True"
    assert lines["MODULE"].startswith("tf_keras.src.legacy_tf_layers")
    assert lines["KERAS"].split()[1].startswith("keras")  # tf.keras untouched
    assert not lines["KERAS"].split()[1].startswith("tf_keras")
    assert lines["NAMES"] == "['dense/bias', 'dense/kernel']"


def test_rnn_cell_dynamic_rnn_matches_numpy(graph):
    """tf.compat.v1.nn.rnn_cell (the same Keras 3 loader) with dynamic_rnn."""
    rng = np.random.RandomState(5)
    x = rng.randn(2, 4, 3).astype(np.float32)  # [batch, time, features]
    inputs = tf1.placeholder(tf.float32, [None, 4, 3])
    cell = tf1.nn.rnn_cell.BasicRNNCell(5)
    outputs, state = tf1.nn.dynamic_rnn(cell, inputs, dtype=tf.float32)
    variables = {v.op.name: v for v in tf1.global_variables()}
    assert sorted(variables) == ["rnn/basic_rnn_cell/bias", "rnn/basic_rnn_cell/kernel"]
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        kernel, bias = sess.run([variables["rnn/basic_rnn_cell/kernel"],
                                 variables["rnn/basic_rnn_cell/bias"]])
        got_outputs, got_state = sess.run([outputs, state], {inputs: x})
    h = np.zeros((2, 5))
    expected = []
    for t in range(4):  # h_t = tanh([x_t, h_{t-1}] @ kernel + bias)
        h = np.tanh(np.concatenate([x[:, t], h], axis=1) @ kernel + bias)
        expected.append(h)
    np.testing.assert_allclose(got_outputs, np.stack(expected, axis=1), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(got_state, h, rtol=1e-5, atol=1e-6)
