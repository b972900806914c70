"""slim's variable helpers on current TensorFlow, values checked against NumPy.

``local_variable``/``global_variable`` call ``variable_scope.variable``, gone
from TF 2.21 (TF1's ``tf.Variable`` factory, now ``variable_v1.VariableV1``).
``assign_from_checkpoint`` cut partitions with a list of slices (an IndexError
since NumPy 1.23).
"""
import numpy as np
import pytest
import tensorflow as tf

import slim_attention as slim

tf1 = tf.compat.v1


def test_local_and_global_variable_collections_and_values(graph):
    local = slim.local_variable(np.arange(3, dtype=np.float32), name="counts")
    glob = slim.global_variable(np.eye(2, dtype=np.float32), name="matrix",
                                use_resource=False)
    assert local in tf1.local_variables() and local not in tf1.global_variables()
    assert glob in tf1.global_variables() and glob not in tf1.trainable_variables()
    with tf1.Session() as sess:
        sess.run([tf1.local_variables_initializer(), tf1.global_variables_initializer()])
        np.testing.assert_array_equal(sess.run(local), [0, 1, 2])
        np.testing.assert_array_equal(sess.run(glob), np.eye(2))


def test_assign_from_checkpoint_and_values_restore_exactly(graph, tmp_path):
    rng = np.random.RandomState(0)
    values = {"net/weights": rng.randn(3, 4).astype(np.float32),
              "net/biases": rng.randn(4).astype(np.float32),
              "head/weights": rng.randn(4, 2).astype(np.float32)}
    with tf.Graph().as_default():
        for name, value in values.items():
            scope, var = name.split("/")
            with tf1.variable_scope(scope):
                slim.model_variable(var, initializer=tf1.constant_initializer(value),
                                    shape=value.shape)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            path = tf1.train.Saver().save(sess, str(tmp_path / "vars.ckpt"))

    for name, value in values.items():
        scope, var = name.split("/")
        with tf1.variable_scope(scope):
            slim.model_variable(var, shape=value.shape,
                                initializer=tf1.zeros_initializer())
    assert sorted(v.op.name for v in slim.get_model_variables()) == sorted(values)
    to_restore = slim.get_variables_to_restore(exclude=["head"])
    assert sorted(v.op.name for v in to_restore) == ["net/biases", "net/weights"]
    restore_fn = slim.assign_from_checkpoint_fn(path, to_restore)
    new_head = np.full((4, 2), 7.0, np.float32)
    assign_fn = slim.assign_from_values_fn({"head/weights": new_head})
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        restore_fn(sess)
        assign_fn(sess)
        got = {v.op.name: sess.run(v) for v in slim.get_model_variables()}
    np.testing.assert_array_equal(got["net/weights"], values["net/weights"])
    np.testing.assert_array_equal(got["net/biases"], values["net/biases"])
    np.testing.assert_array_equal(got["head/weights"], new_head)


def _save(tmp_path, values):
    """Writes a checkpoint holding ``values`` (name -> array), from a graph of its own."""
    with tf.Graph().as_default():
        saved = [tf1.get_variable(name, initializer=value) for name, value in values.items()]
        with tf1.Session() as sess:
            sess.run(tf1.variables_initializer(saved))
            return tf1.train.Saver(saved).save(sess, str(tmp_path / "full.ckpt"))


@pytest.mark.parametrize("as_dict", [False, True], ids=["list", "dict"])
def test_assign_from_checkpoint_restores_partitioned_variables(graph, tmp_path, as_dict):
    """Each partition gets its slice of the checkpoint value, as TF1's Saver restores it."""
    rng = np.random.RandomState(2)
    values = {"emb": rng.randn(7, 3).astype(np.float32),
              "plain": rng.randn(2, 2).astype(np.float32),
              "one": np.array([20.0], np.float32)}
    path = _save(tmp_path, values)
    emb = slim.variable("emb", shape=[7, 3], initializer=tf1.zeros_initializer(),
                        partitioner=tf1.fixed_size_partitioner(3))
    plain = slim.variable("plain", shape=[2, 2], initializer=tf1.zeros_initializer())
    one = slim.variable("one", shape=[1], initializer=tf1.zeros_initializer(),
                        partitioner=tf1.variable_axis_size_partitioner(2))
    parts = list(emb) + list(one)
    assert [p.shape.as_list() for p in emb] == [[3, 3], [2, 3], [2, 3]]
    if as_dict:
        var_list = {"emb": list(emb), "plain": plain, "one": list(one)}
    else:
        var_list = parts + [plain]
    assign_op, feed = slim.assign_from_checkpoint(path, var_list)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        sess.run(assign_op, feed)
        got = sess.run([tf.identity(emb), plain, tf.identity(one)])
        # The reference: TF1's Saver restores the same partitioned variables.
        sess.run(tf1.global_variables_initializer())
        tf1.train.Saver({"emb": list(emb), "plain": plain, "one": list(one)}).restore(sess, path)
        want = sess.run([tf.identity(emb), plain, tf.identity(one)])
    for g, w, value in zip(got, want, [values["emb"], values["plain"], values["one"]]):
        np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(g, value)


def test_assign_from_checkpoint_missing_partitioned_variable(graph, tmp_path):
    path = _save(tmp_path, {"plain": np.ones([2], np.float32)})
    emb = slim.variable("emb", shape=[4, 2], initializer=tf1.zeros_initializer(),
                        partitioner=tf1.fixed_size_partitioner(2))
    with pytest.raises(ValueError, match=r"Checkpoint is missing variable \[emb\]"):
        slim.assign_from_checkpoint(path, list(emb))
    assign_op, feed = slim.assign_from_checkpoint(path, list(emb), ignore_missing_vars=True)
    assert feed == {}


def test_assign_from_checkpoint_is_one_object_everywhere():
    import importlib

    import tf_slim

    variables = importlib.import_module("tf_slim.ops.variables")
    assert slim.assign_from_checkpoint is tf_slim.assign_from_checkpoint
    assert slim.assign_from_checkpoint is variables.assign_from_checkpoint
    assert slim.assign_from_checkpoint.__wrapped__.__module__ == "tf_slim.ops.variables"


def test_replica_device_setter_places_variables_as_in_tf1(graph):
    """ps tasks round-robin, merged with the enclosing device, as TF1 placed them.

    (tf-slim's own test expects ``/job:ps/task:0/cpu:0`` because TF1's
    ``cached_session()`` pinned the whole test graph to ``/device:CPU:0``.)
    """
    with tf1.device(tf1.train.replica_device_setter(ps_tasks=2)):
        a = slim.variable("a", [])
        b = slim.model_variable("b", [])
        c = slim.variable("c", [], device="cpu:12")
        with tf1.device("/device:CPU:0"):
            d = slim.variable("d", [])
        with tf1.device("cpu:99"):
            e_init = tf.constant(12.0)
        e = slim.variable("e", initializer=e_init)
    assert a.device == "/job:ps/task:0"
    assert b.device == "/job:ps/task:1"
    assert c.device == "/job:ps/task:0/device:CPU:12"
    assert d.device == "/job:ps/task:1/device:CPU:0"
    assert e.device == "/job:ps/task:0"
    assert e.initial_value.device == "/job:worker/device:CPU:99"
