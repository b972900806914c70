"""The normalisation layers of the attention blocks (slim_attention.attention._norms)."""
import numpy as np
import pytest
import tensorflow as tf

import attention_cases as cases
import attention_reference as ref
import slim_attention as slim
from slim_attention.attention import _norms

tf1 = tf.compat.v1
SHAPE = (2, 5, 7, 16)
_var = cases.variable


def _random_input(seed=0, shape=SHAPE):
    return np.random.RandomState(seed).normal(size=shape)


@pytest.mark.parametrize('zero_init_last,expected', [(True, 0.0), (False, 1.0)])
def test_gamma_initializer(graph, zero_init_last, expected):
    v = tf1.get_variable('gamma', [3], initializer=_norms.gamma_initializer(zero_init_last))
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(v), np.full(3, expected))


@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
@pytest.mark.parametrize('dtype', [tf.float32, tf.float64], ids=['fused', 'moments'])
def test_batch_norm_variables_and_training_math(graph, data_format, dtype):
    """The variables are norm_variables(moving=True), in that order, moving
    ones not trainable; training normalises with the biased batch variance."""
    shape = (3, 4, 5, 6) if data_format == 'NHWC' else (3, 6, 4, 5)
    cax = 3 if data_format == 'NHWC' else 1
    x = tf1.placeholder(dtype, shape)
    y = _norms.batch_norm(x, True, 0.9, 1e-5, tf1.ones_initializer(), dtype,
                          True, None, data_format)
    created = [(v.op.name, v.shape.as_list(), v.dtype.base_dtype)
               for v in tf1.global_variables()]
    assert created == _norms.norm_variables('BatchNorm', 6, dtype, moving=True)
    assert [v.op.name for v in tf1.trainable_variables()] == [
        'BatchNorm/beta', 'BatchNorm/gamma']
    value = np.random.RandomState(0).normal(size=shape)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        out = sess.run(y, {x: value})
    axes = tuple(a for a in range(4) if a != cax)
    mean = value.mean(axis=axes, keepdims=True)
    reference = (value - mean) / np.sqrt(value.var(axis=axes, keepdims=True) + 1e-5)
    rtol = 1e-5 if dtype == tf.float32 else 1e-12
    np.testing.assert_allclose(out, reference, rtol=rtol, atol=rtol)


@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
def test_layer_norm_variables_and_math(graph, data_format):
    shape = (3, 1, 1, 6) if data_format == 'NHWC' else (3, 6, 1, 1)
    x = tf1.placeholder(tf.float64, shape)
    y = _norms.layer_norm(x, 1e-5, tf.float64, True, None, data_format)
    created = [(v.op.name, v.shape.as_list(), v.dtype.base_dtype)
               for v in tf1.global_variables()]
    assert created == _norms.norm_variables('LayerNorm', 6, tf.float64)
    value = np.random.RandomState(1).normal(size=shape)
    with tf1.Session() as sess:
        w = cases.set_random_weights(sess, tf1.global_variables(), 'LayerNorm')
        out = sess.run(y, {x: value})
    flat = value.reshape(3, 6)
    normed = (flat - flat.mean(1, keepdims=True)) / np.sqrt(flat.var(1, keepdims=True) + 1e-5)
    reference = (normed * w['gamma'] + w['beta']).reshape(shape)
    np.testing.assert_allclose(out, reference, rtol=1e-12)


# ------------------------------------------- batch norm, through the blocks
@pytest.mark.parametrize('name', ['sam', 'nl'])
def test_batch_norm_updates_moving_statistics(graph, name):
    fn = {'sam': slim.spatial_attention, 'nl': slim.non_local_block}[name]
    scope = {'sam': 'SpatialAttention', 'nl': 'NonLocal'}[name]
    decay = {'sam': 0.99, 'nl': 0.9}[name]  # the official defaults
    x = cases.placeholder(SHAPE, dtype=tf.float64)
    fn(x)
    updates = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
    assert len(updates) == 1
    value = _random_input()
    with tf1.Session() as sess:
        w = cases.set_random_weights(sess, tf1.global_variables(), scope)
        sess.run(updates, {x: value})
        mean, var = sess.run([_var(scope + '/BatchNorm/moving_mean'),
                              _var(scope + '/BatchNorm/moving_variance')])
    pre_bn = (ref.spatial_logits(value, w) if name == 'sam'
              else ref.non_local_z_pre_bn(value, w))
    exp_mean, exp_var = ref.moving_stats_after_update(pre_bn, w, 'BatchNorm/', decay)
    np.testing.assert_allclose(mean, exp_mean, rtol=1e-10)
    np.testing.assert_allclose(var, exp_var, rtol=1e-10)


@pytest.mark.parametrize('fn', [slim.spatial_attention, slim.non_local_block,
                                slim.convolutional_block_attention_module])
def test_batch_norm_inference_adds_no_updates(graph, fn):
    fn(cases.placeholder(SHAPE), is_training=False)
    assert tf1.get_collection(tf1.GraphKeys.UPDATE_OPS) == []


def test_batch_norm_bool_tensor_updates_only_when_training(graph):
    x = cases.placeholder(SHAPE)
    is_training = tf1.placeholder(tf.bool, [])
    slim.non_local_block(x, is_training=is_training)
    updates = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
    value = _random_input()
    with tf1.Session() as sess:
        cases.set_random_weights(sess, tf1.global_variables(), 'NonLocal')
        before = sess.run(_var('NonLocal/BatchNorm/moving_mean'))
        sess.run(updates, {x: value, is_training: False})
        np.testing.assert_array_equal(sess.run(_var('NonLocal/BatchNorm/moving_mean')), before)
        sess.run(updates, {x: value, is_training: True})
        assert not np.allclose(sess.run(_var('NonLocal/BatchNorm/moving_mean')), before)


@pytest.mark.parametrize('dtype', [tf.float32, tf.float64], ids=['fused', 'moments'])
def test_batch_norm_on_a_bool_tensor_trains_after_a_forward_run(graph, dtype):
    """CBAM's batch norm on an is_training placeholder: a forward run first,
    then ``minimize`` is built and run (a TF2 tf.cond could not be
    differentiated once it had run). The placeholder network computes, and
    differentiates, bit for bit what the Python-bool networks do, and its
    moving statistics move only when training -- a non-finite input in
    inference does not reach them."""
    x = cases.placeholder(SHAPE, dtype=dtype)
    is_training = tf1.placeholder(tf.bool, [])
    kwargs = dict(scope='CBAM', zero_init_last=False)
    y = slim.convolutional_block_attention_module(x, is_training=is_training, **kwargs)
    (update,) = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
    fixed = {mode: slim.convolutional_block_attention_module(
        x, is_training=mode, reuse=True, **kwargs) for mode in (True, False)}
    weights = tf1.trainable_variables()
    moving = [_var('CBAM/SpatialAttention/BatchNorm/moving_' + s) for s in ('mean', 'variance')]
    value = _random_input(1)
    # Grappler off: it rewrites the Python-bool graphs' inference batch norm
    # (1 ulp apart), which would hide whether the placeholder graph selects exactly.
    config = tf1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    with tf1.Session(config=config) as sess:
        cases.set_random_weights(sess, tf1.global_variables(), 'CBAM')
        start = sess.run(moving)
        for mode in (True, False):
            np.testing.assert_array_equal(*sess.run([y, fixed[mode]], {x: value, is_training: mode}))
        broken = value.copy()
        broken[0, 0, 0, 0] = np.nan
        sess.run(update, {x: broken, is_training: False})
        for got, want in zip(sess.run(moving), start):
            np.testing.assert_array_equal(got, want)

        # Only now: the gradients, and a training step.
        loss = tf.reduce_mean(tf.square(y))
        for mode in (True, False):
            got, want = sess.run([tf.gradients(loss, weights),
                                  tf.gradients(tf.reduce_mean(tf.square(fixed[mode])), weights)],
                                 {x: value, is_training: mode})
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)
        with tf.control_dependencies([update]):
            train = tf1.train.GradientDescentOptimizer(0.1).minimize(loss)
        before = sess.run(loss, {x: value, is_training: True})
        sess.run(train, {x: value, is_training: True})
        assert sess.run(loss, {x: value, is_training: True}) < before
        for got, want in zip(sess.run(moving), start):
            assert np.all(np.isfinite(got)) and not np.array_equal(got, want)
