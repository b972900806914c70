"""Checkpoints: tf-slim's restore into the attention networks, and back.

* A checkpoint in the format and names of the model zoo's resnet_v1_50.ckpt
  (tf-slim's resnet_v1_50 at 1000 classes, every variable, written by
  ``tf.compat.v1.train.Saver``, V2 format) is written here (none can be
  downloaded) and restored into resnet_v1_50 with CBAM with tf-slim's own
  tools: ``get_variables_to_restore(exclude=nets.attention_scopes())`` and
  ``assign_from_checkpoint_fn``. Every base variable gets the checkpoint's
  value; the attention variables keep their initial values.
* Every block: a plain tf-slim ResNet (v1 and v2, three one-unit blocks)
  restores into the same network with the block, and the attention networks'
  own checkpoint (the restored base, the fresh attention) restores into a
  fresh graph.
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_slim.nets as tf_slim_nets

import slim_attention as slim
from slim_attention import nets
from slim_attention.nets import resnet_v1
from slim_attention.nets import resnet_v2

from nets_cases import BLOCKS, session, tiny_blocks

tf1 = tf.compat.v1

VERSIONS = {'v1': (resnet_v1, tf_slim_nets.resnet_v1),
            'v2': (resnet_v2, tf_slim_nets.resnet_v2)}


def _save(path, var_list=None):
    """Initialises the default graph's variables, saves them, returns their values."""
    saver = tf1.train.Saver(var_list, write_version=tf1.train.SaverDef.V2)
    with session() as sess:
        sess.run(tf1.global_variables_initializer())
        saver.save(sess, path, write_meta_graph=False)
        variables = tf1.global_variables()
        return dict(zip([v.op.name for v in variables], sess.run(variables)))


@pytest.fixture(scope='module')
def model_zoo_resnet_v1_50(tmp_path_factory):
    """A checkpoint with the names, shapes and format of resnet_v1_50.ckpt."""
    path = str(tmp_path_factory.mktemp('zoo') / 'resnet_v1_50.ckpt')
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [1, 224, 224, 3])
        with slim.arg_scope(tf_slim_nets.resnet_v1.resnet_arg_scope()):
            tf_slim_nets.resnet_v1.resnet_v1_50(images, 1000, is_training=False)
        values = _save(path)
    return path, values


def test_model_zoo_checkpoint_restores_into_resnet_v1_50_with_cbam(
        graph, model_zoo_resnet_v1_50):
    path, values = model_zoo_resnet_v1_50
    stored = dict(tf1.train.list_variables(path))
    assert len(stored) == 267 and stored['resnet_v1_50/logits/weights'] == [
        1, 1, 2048, 1000]
    images = tf1.placeholder(tf.float32, [1, 224, 224, 3])
    with slim.arg_scope(resnet_v1.resnet_arg_scope()):
        resnet_v1.resnet_v1_50(images, 1000, is_training=False,
                               attention_module='cbam')
    variables = slim.get_variables_to_restore(exclude=nets.attention_scopes())
    assert sorted(v.op.name for v in variables) == sorted(stored)
    init_fn = slim.assign_from_checkpoint_fn(path, variables)
    attention = nets.attention_variables()
    assert len(attention) == 16 * 9
    with session() as sess:
        sess.run(tf1.global_variables_initializer())
        initial = sess.run(attention)
        init_fn(sess)
        restored = sess.run(variables)
        after = sess.run(attention)
    for var, value in zip(variables, restored):
        np.testing.assert_array_equal(value, values[var.op.name], var.op.name)
    for var, a, b in zip(attention, initial, after):
        np.testing.assert_array_equal(a, b, var.op.name)


def _tiny_blocks(module, version):
    return tiny_blocks(getattr(module, 'resnet_%s_block' % version))


def _build_all(version):
    """The six attention networks (scope = the block's name) in the default graph."""
    ours = VERSIONS[version][0]
    images = tf1.placeholder(tf.float32, [1, 32, 32, 3])
    with slim.arg_scope(ours.resnet_arg_scope()):
        for block in BLOCKS:
            getattr(ours, 'resnet_' + version)(
                images, _tiny_blocks(ours, version), 5, include_root_block=False,
                scope=block, attention_module=block)


@pytest.mark.parametrize('version', sorted(VERSIONS))
def test_round_trips_for_every_block(tmp_path, version):
    """tf-slim's plain network into each attention network, then the attention
    networks' own checkpoint into a fresh graph."""
    plain_path = str(tmp_path / 'plain.ckpt')
    path = str(tmp_path / 'attention.ckpt')
    theirs = VERSIONS[version][1]
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [1, 32, 32, 3])
        with slim.arg_scope(theirs.resnet_arg_scope()):
            getattr(theirs, 'resnet_' + version)(
                images, _tiny_blocks(theirs, version), 5, include_root_block=False,
                scope='plain')
        plain = _save(plain_path)
    with tf.Graph().as_default():
        _build_all(version)
        init_fns = []
        for block in BLOCKS:
            variables = slim.get_variables_to_restore(
                include=[block + '/'], exclude=nets.attention_scopes(block + '/'))
            assert len(variables) == len(plain), block
            init_fns.append((block, variables, slim.assign_from_checkpoint_fn(
                plain_path, {'plain' + v.op.name[len(block):]: v
                             for v in variables})))
        saver = tf1.train.Saver()
        with session() as sess:
            sess.run(tf1.global_variables_initializer())
            for block, variables, init_fn in init_fns:
                init_fn(sess)
                for var, value in zip(variables, sess.run(variables)):
                    np.testing.assert_array_equal(
                        value, plain['plain' + var.op.name[len(block):]],
                        var.op.name)
            saver.save(sess, path, write_meta_graph=False)
            variables = tf1.global_variables()
            values = dict(zip([v.op.name for v in variables], sess.run(variables)))
    with tf.Graph().as_default():
        _build_all(version)
        variables = tf1.global_variables()
        assert sorted(v.op.name for v in variables) == sorted(values)
        with session() as sess:
            tf1.train.Saver().restore(sess, path)
            for var, value in zip(variables, sess.run(variables)):
                np.testing.assert_array_equal(value, values[var.op.name],
                                              var.op.name)
