"""slim.metrics streaming metrics on current TensorFlow, checked against NumPy/scikit-learn.

The streaming metrics reach ``array_ops.stack``, ``control_flow_ops.cond`` and
``ops.Tensor``, all moved in TF 2.13-2.14; the values are accumulated over
several batches, as an evaluation loop does.
"""
import numpy as np
import tensorflow as tf
from sklearn.metrics import roc_auc_score

import slim_attention as slim

tf1 = tf.compat.v1

BATCHES = 4
BATCH = 64


def _stream(sess, update_op, value, feeds):
    sess.run(tf1.local_variables_initializer())
    for feed in feeds:
        sess.run(update_op, feed)
    return sess.run(value)


def test_streaming_accuracy_and_mean(graph):
    rng = np.random.RandomState(0)
    labels = rng.randint(0, 5, size=(BATCHES, BATCH))
    predictions = np.where(rng.rand(BATCHES, BATCH) < 0.6, labels,
                           rng.randint(0, 5, size=(BATCHES, BATCH)))
    values = rng.randn(BATCHES, BATCH).astype(np.float32)
    weights = rng.rand(BATCHES, BATCH).astype(np.float32)
    p = tf1.placeholder(tf.int64, [None])
    t = tf1.placeholder(tf.int64, [None])
    v = tf1.placeholder(tf.float32, [None])
    w = tf1.placeholder(tf.float32, [None])
    accuracy, accuracy_update = slim.metrics.streaming_accuracy(p, t)
    mean, mean_update = slim.metrics.streaming_mean(v, weights=w)
    with tf1.Session() as sess:
        got_accuracy = _stream(sess, accuracy_update, accuracy,
                               [{p: predictions[i], t: labels[i]} for i in range(BATCHES)])
        got_mean = _stream(sess, mean_update, mean,
                           [{v: values[i], w: weights[i]} for i in range(BATCHES)])
    np.testing.assert_allclose(got_accuracy, (predictions == labels).mean(), rtol=1e-6)
    np.testing.assert_allclose(got_mean, (values * weights).sum() / weights.sum(),
                               rtol=1e-5)


def test_streaming_auc_matches_sklearn(graph):
    rng = np.random.RandomState(1)
    labels = rng.rand(BATCHES, BATCH) < 0.4
    scores = np.clip(0.5 + 0.25 * (2 * labels - 1) + 0.3 * rng.randn(BATCHES, BATCH),
                     0.0, 1.0).astype(np.float32)
    s = tf1.placeholder(tf.float32, [None])
    t = tf1.placeholder(tf.bool, [None])
    auc, auc_update = slim.metrics.streaming_auc(s, t, num_thresholds=200)
    with tf1.Session() as sess:
        got = _stream(sess, auc_update, auc,
                      [{s: scores[i], t: labels[i]} for i in range(BATCHES)])
    expected = roc_auc_score(labels.ravel(), scores.ravel())
    assert 0.7 < expected < 0.95  # a non-trivial ranking
    # slim's AUC is a Riemann sum over 200 fixed thresholds, not the exact value.
    assert abs(got - expected) < 0.01


def test_streaming_concat_and_aggregate_metric_map(graph):
    rng = np.random.RandomState(2)
    batches = [rng.randn(n, 3).astype(np.float32) for n in (2, 5, 1)]
    x = tf1.placeholder(tf.float32, [None, 3])
    names_to_values, names_to_updates = slim.metrics.aggregate_metric_map({
        "concat": slim.metrics.streaming_concat(x),
        "mse": slim.metrics.streaming_mean_squared_error(x, tf.zeros_like(x)),
    })
    with tf1.Session() as sess:
        sess.run(tf1.local_variables_initializer())
        for batch in batches:
            sess.run(list(names_to_updates.values()), {x: batch})
        got = sess.run(names_to_values)
    everything = np.concatenate(batches)
    np.testing.assert_array_equal(got["concat"], everything)
    np.testing.assert_allclose(got["mse"], (everything ** 2).mean(), rtol=1e-5)
