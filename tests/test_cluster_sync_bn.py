"""Synchronised batch norm (vgg_patch/training/sync_bn.py): two workers' global
batch statistics and gradients against one process and NumPy.

The two workers are two in-process gRPC servers on 127.0.0.1 (real
``CollectiveReduceV2``), each with its own graph and session, run from two
threads; their shares are unequal (3 + 2 images), as in an epoch's last batch.
The trainer weights worker r's gradients by ``c_r / C`` (its image count over
the global count), so the check is ``sum_r c_r/C * g_r == one process's``.
"""
import itertools
import threading

import numpy as np
import pytest
import tensorflow as tf

import slim_attention as slim
from slim_attention.attention import _norms
from slim_attention.attention import batch_statistics
from tf_slim.layers import layers as slim_layers
from vgg_patch import cluster
from vgg_patch.training.replicas import Collectives, collective_config
from vgg_patch.training.sync_bn import synchronized_batch_norm

SHARES = (3, 2)
# Fresh instance keys for every build: the servers live as long as the module.
_KEYS = itertools.count(1000, 1000)


@pytest.fixture(scope="module")
def servers():
    """Two worker servers of one cluster, in this process."""
    spec = tf.train.ClusterSpec(cluster.make_cluster(2))
    out = []
    for rank in range(2):
        config = collective_config("/job:worker/replica:0/task:0",
                                   "/job:worker/task:%d" % rank)
        out.append((tf.distribute.Server(spec, job_name="worker", task_index=rank,
                                         config=config, start=True), config))
    return out


def _data(seed=0):
    # Mean 3, std 2: a one-pass variance's cancellation would show.
    return np.random.RandomState(seed).normal(3.0, 2.0, (sum(SHARES), 4, 4, 3)).astype(
        np.float32)


def _build(layer, x, train):
    """``layer(x, train)`` plus a loss (its share's mean) and what the tests fetch."""
    xin = tf.constant(x)
    y = layer(xin, train)
    weights = np.linspace(-1.0, 1.0, 48, dtype=np.float32)
    loss = tf.reduce_mean(tf.square(tf.reduce_sum(tf.reshape(y, [-1, 48]) * weights, 1)))
    trainable = tf.compat.v1.trainable_variables()
    grads = tf.gradients(loss, [xin] + trainable)
    moving = [v for v in tf.compat.v1.global_variables() if "moving" in v.op.name]
    updates = tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
    return dict(y=y, grads=grads, updates=updates), moving


def _run(graph, fetches, moving, target="", config=None, feed=None):
    with tf.compat.v1.Session(target, graph=graph, config=config) as sess:
        sess.run(tf.compat.v1.variables_initializer(
            graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)))
        out = sess.run(fetches, feed)
        out["moving"] = sess.run(moving)
    return out


def _one_process(layer, x):
    graph = tf.Graph()
    with graph.as_default():
        fetches, moving = _build(layer, x, tf.compat.v1.placeholder_with_default(True, []))
    return _run(graph, fetches, moving)


def _two_workers(layer, x, servers):
    """Each worker's results on its share (built in turn, run at once)."""
    built, first = [], next(_KEYS)
    rows = np.split(x, [SHARES[0]])
    for rank in range(2):
        graph = tf.Graph()
        with graph.as_default(), tf.device("/job:worker/replica:0/task:%d" % rank):
            collectives = Collectives(2, timeout=60, first_instance_key=first)
            train = tf.compat.v1.placeholder_with_default(True, [])
            with synchronized_batch_norm(collectives) as synced:
                fetches, moving = _build(layer, rows[rank], train)
        built.append((graph, fetches, moving, synced, train))
    results = [None, None]

    def work(rank):
        graph, fetches, moving, _, _ = built[rank]
        server, config = servers[rank]
        results[rank] = _run(graph, fetches, moving, server.target, config)
    threads = [threading.Thread(target=work, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results[0] is not None and results[1] is not None, "a worker failed"
    return results, built


def _check_equal_to_one_process(layer, servers, epsilon):
    x = _data()
    single = _one_process(layer, x)
    (w0, w1), built = _two_workers(layer, x, servers)
    weight = [c / float(sum(SHARES)) for c in SHARES]
    diffs = {"y": np.abs(np.concatenate([w0["y"], w1["y"]]) - single["y"]).max(),
             "dx": np.abs(np.concatenate([w0["grads"][0] * weight[0],
                                          w1["grads"][0] * weight[1]])
                          - single["grads"][0]).max()}
    for i, g in enumerate(single["grads"][1:], 1):  # gamma, beta
        # relative to the gradient's largest element (about 100 here)
        diffs["dvar%d" % i] = np.abs(w0["grads"][i] * weight[0] + w1["grads"][i] * weight[1]
                                     - g).max() / np.abs(g).max()
    for worker in (w0, w1):
        for value, expected in zip(worker["moving"], single["moving"]):
            diffs["moving"] = max(diffs.get("moving", 0.0), np.abs(value - expected).max())
    # NumPy: gamma 1, beta 0 at the start, so y = (x - mean) / sqrt(var + eps).
    x64 = x.astype(np.float64)
    mean, var = x64.mean((0, 1, 2)), x64.var((0, 1, 2))
    expected_y = (x64 - mean) / np.sqrt(var + epsilon)
    diffs["y_numpy"] = np.abs(np.concatenate([w0["y"], w1["y"]]) - expected_y).max()
    print("max abs differences, two workers against one process:", diffs)
    for name, diff in diffs.items():
        assert diff < 2e-5, (name, diffs)
    return built


def _slim_layer(x, train):
    return slim.batch_norm(x, is_training=train, scale=True, decay=0.5)


def _attention_layer(x, train):
    return _norms.batch_norm(x, train, 0.5, 1e-5, tf.compat.v1.ones_initializer(),
                             tf.float32, True, None, "NHWC")


def _inference_alone(built, servers):
    """Inference (train False) runs no collective: one worker alone finishes."""
    graph, fetches, moving, _, train = built[0]
    server, config = servers[0]
    out = _run(graph, {"y": fetches["y"]}, moving, server.target, config, {train: False})
    assert np.isfinite(out["y"]).all()


def test_slim_batch_norm_two_workers_equal_one_process(servers):
    built = _check_equal_to_one_process(_slim_layer, servers, 1e-3)
    assert [b[3] for b in built] == [["BatchNorm"], ["BatchNorm"]]
    _inference_alone(built, servers)


def test_attention_batch_norm_two_workers_equal_one_process(servers):
    built = _check_equal_to_one_process(_attention_layer, servers,
                                        batch_statistics.FUSED_MIN_EPSILON)
    _inference_alone(built, servers)


@pytest.mark.parametrize("ratio", [1.0, 100.0])
def test_a_moving_mean_shift_keeps_the_one_pass_variance_exact(graph, ratio):
    """mean/std = 100: one pass without a shift is 3.6e-2 off in y (float32)."""
    rng = np.random.RandomState(1)
    x = (rng.normal(size=(16, 6, 6, 8)) + ratio).astype(np.float32)
    shift = np.full([8], 0.9 * ratio, np.float32)  # a moving mean near the mean
    y, mean, variance, count = batch_statistics.synchronized_batch_norm(
        tf.constant(x), None, None, 1e-3, "NHWC", lambda vector, weight: vector, shift)
    x64 = x.astype(np.float64)
    expected = (x64 - x64.mean((0, 1, 2))) / np.sqrt(x64.var((0, 1, 2)) + 1e-3)
    with tf.compat.v1.Session() as sess:
        y, mean, variance, count = sess.run([y, mean, variance, count])
    assert count == 16 * 6 * 6
    np.testing.assert_allclose(mean, x64.mean((0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(variance, x64.var((0, 1, 2)), rtol=1e-4)
    assert np.abs(y - expected).max() < 2e-4


def test_outside_a_cluster_the_graph_has_no_collective_and_nothing_stays_patched(graph):
    originals = tf.compat.v1.nn.fused_batch_norm, slim_layers.nn.fused_batch_norm
    x = tf.constant(_data())
    train = tf.compat.v1.placeholder_with_default(True, [])
    with synchronized_batch_norm(Collectives(2)):
        pass
    assert (tf.compat.v1.nn.fused_batch_norm, slim_layers.nn.fused_batch_norm) == originals
    assert batch_statistics.active_sum() is None
    _attention_layer(x, train)
    _slim_layer(x, train)
    types = {op.type for op in graph.get_operations()}
    assert not [t for t in types if "Collective" in t]
    with pytest.raises(TypeError, match="sum_fn must be callable, got 3"):
        with batch_statistics.cross_replica_sum(3):
            pass
    with pytest.raises(ValueError, match="data_format must be 'NHWC' or 'NCHW', got 'NWHC'"):
        batch_statistics.synchronized_batch_norm(x, None, None, 1e-3, "NWHC", None)
