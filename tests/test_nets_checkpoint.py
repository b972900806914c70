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

The attention graphs are the ones tests/test_nets_resnet.py reads
(nets_cases.shared): built once per run.
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_slim.nets as tf_slim_nets

import slim_attention as slim
from slim_attention import nets

from nets_cases import BLOCKS, build_tiny_resnets, resnet_50, save_all, session
from nets_cases import tiny_blocks
from nets_cases import tiny_resnets

tf1 = tf.compat.v1


@pytest.fixture(scope='module')
def model_zoo_resnet_v1_50(module_tmp_path):
    """A checkpoint with the names, shapes and format of resnet_v1_50.ckpt."""
    path = str(module_tmp_path / 'resnet_v1_50.ckpt')
    # tf-slim's own resnet_v1_50 (the graph test_nets_resnet reads).
    with resnet_50('v1', 'tf_slim')['graph'].as_default():
        values = save_all(path)
    return path, values


def test_model_zoo_checkpoint_restores_into_resnet_v1_50_with_cbam(
        model_zoo_resnet_v1_50):
    path, values = model_zoo_resnet_v1_50
    stored = dict(tf1.train.list_variables(path))
    assert len(stored) == 267 and stored['resnet_v1_50/logits/weights'] == [
        1, 1, 2048, 1000]
    with resnet_50('v1', 'cbam')['graph'].as_default():
        _restore_and_check(path, values)


def _restore_and_check(path, values):
    stored = dict(tf1.train.list_variables(path))
    # include: the shared graph may also hold a training test's global_step.
    variables = slim.get_variables_to_restore(include=['resnet_v1_50/'],
                                              exclude=nets.attention_scopes())
    assert sorted(v.op.name for v in variables) == sorted(stored)
    init_fn = slim.assign_from_checkpoint_fn(path, variables)
    attention = nets.attention_variables('resnet_v1_50/')
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


@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_round_trips_for_every_block(tmp_path, version):
    """tf-slim's plain network into each attention network, then the attention
    networks' own checkpoint into a fresh graph."""
    plain_path = str(tmp_path / 'plain.ckpt')
    path = str(tmp_path / 'attention.ckpt')
    theirs = getattr(tf_slim_nets, 'resnet_' + version)
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [4, 32, 32, 3])
        with slim.arg_scope(theirs.resnet_arg_scope()):
            getattr(theirs, 'resnet_' + version)(
                images, tiny_blocks(getattr(theirs, 'resnet_%s_block' % version)), 3,
                include_root_block=False, scope='plain')
        plain = save_all(plain_path)
    with tiny_resnets(version)['graph'].as_default():
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
        build_tiny_resnets(version, tf1.placeholder(tf.float32, [4, 32, 32, 3]))
        variables = tf1.global_variables()
        assert sorted(v.op.name for v in variables) == sorted(values)
        with session() as sess:
            tf1.train.Saver().restore(sess, path)
            for var, value in zip(variables, sess.run(variables)):
                np.testing.assert_array_equal(value, values[var.op.name],
                                              var.op.name)
