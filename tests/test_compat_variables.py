"""slim's variable helpers on current TensorFlow, values checked against NumPy.

``local_variable``/``global_variable`` call ``variable_scope.variable``, gone
from TF 2.21 (TF1's ``tf.Variable`` factory, now ``variable_v1.VariableV1``).
"""
import numpy as np
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
