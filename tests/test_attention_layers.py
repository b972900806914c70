"""The weighted layers of the attention blocks (slim_attention.attention._layers).

Each helper is the one place a piece of the blocks' logic lives (variable
creation with an optional bias, the SE/CBAM MLP, the channel-gate epilogue);
these tests pin it directly against NumPy, independently of any block.
"""
import numpy as np
import pytest
import tensorflow as tf

from slim_attention.attention import _layers

tf1 = tf.compat.v1


def _layer_args(dtype=tf.float64, biases_initializer=tf1.zeros_initializer(),
          collections=None, weights_regularizer=None, biases_regularizer=None):
    return _layers.LayerArgs(dtype, tf1.glorot_uniform_initializer(),
                            weights_regularizer, biases_initializer,
                            biases_regularizer, True, collections)


def _load_random(sess, variables, seed=0):
    rng = np.random.RandomState(seed)
    values = {}
    for v in variables:
        value = rng.normal(size=v.shape.as_list())
        v.load(value, sess)
        values[v.op.name] = value
    return values


@pytest.mark.parametrize('with_bias', [True, False])
def test_weighted_layer_variables_and_math(graph, with_bias):
    x = tf1.placeholder(tf.float64, [None, 3])
    args = _layer_args(biases_initializer=tf1.zeros_initializer() if with_bias else None,
                 collections={'weights': ['W'], 'biases': ['B']},
                 weights_regularizer=tf.reduce_sum, biases_regularizer=tf.reduce_sum)
    y = _layers.weighted_layer(x, tf.matmul, [3, 4], args, 'layer')
    names = {v.op.name: v.shape.as_list() for v in tf1.global_variables()}
    expected = {'layer/weights': [3, 4]}
    if with_bias:
        expected['layer/biases'] = [4]
    assert names == expected
    assert [v.op.name for v in tf1.get_collection('W')] == ['layer/weights']
    assert [v.op.name for v in tf1.get_collection('B')] == (
        ['layer/biases'] if with_bias else [])
    assert len(tf1.get_collection(tf1.GraphKeys.REGULARIZATION_LOSSES)) == len(expected)
    assert set(tf1.global_variables()) <= set(
        tf1.get_collection(tf1.GraphKeys.MODEL_VARIABLES))
    value = np.random.RandomState(1).normal(size=(2, 3))
    with tf1.Session() as sess:
        w = _load_random(sess, tf1.global_variables())
        out = sess.run(y, {x: value})
    reference = value @ w['layer/weights'] + w.get('layer/biases', 0.0)
    np.testing.assert_allclose(out, reference, rtol=1e-12)


def test_weighted_layer_bias_follows_data_format(graph):
    """conv1x1 in NCHW adds its bias on axis 1 (the channel axis)."""
    x = tf1.placeholder(tf.float64, [2, 3, 4, 5])  # [N, C, H, W]
    y = _layers.conv1x1(x, 6, _layer_args(), 'NCHW', 'conv')
    assert y.shape.as_list() == [2, 6, 4, 5]
    value = np.random.RandomState(2).normal(size=(2, 3, 4, 5))
    with tf1.Session() as sess:
        w = _load_random(sess, tf1.global_variables())
        out = sess.run(y, {x: value})
    kernel = w['conv/weights'][0, 0]  # [Cin, Cout]
    reference = (np.einsum('nchw,cd->ndhw', value, kernel)
                 + w['conv/biases'].reshape(1, -1, 1, 1))
    np.testing.assert_allclose(out, reference, rtol=1e-12)


def test_layer_args_replace_changes_one_layer_only(graph):
    args = _layer_args()
    zero = args._replace(weights_initializer=tf1.zeros_initializer())
    x = tf.constant(np.ones((1, 2)))
    _layers.dense(x, 2, args, 'a')
    _layers.dense(x, 2, zero, 'b')
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        a, b = sess.run([v for name in ('a/weights', 'b/weights')
                         for v in tf1.global_variables() if v.op.name == name])
    assert np.abs(a).max() > 0 and not b.any()
    assert args.weights_initializer is not zero.weights_initializer


def test_mlp_matches_numpy(graph):
    x = tf1.placeholder(tf.float64, [None, 8])
    y = _layers.mlp(x, 3, tf.nn.relu, _layer_args())
    assert y.shape.as_list() == [None, 8]
    assert sorted(v.op.name for v in tf1.global_variables()) == [
        'fc1/biases', 'fc1/weights', 'fc2/biases', 'fc2/weights']
    value = np.random.RandomState(3).normal(size=(4, 8))
    with tf1.Session() as sess:
        w = _load_random(sess, tf1.global_variables())
        out = sess.run(y, {x: value})
    hidden = np.maximum(value @ w['fc1/weights'] + w['fc1/biases'], 0.0)
    np.testing.assert_allclose(out, hidden @ w['fc2/weights'] + w['fc2/biases'],
                               rtol=1e-12)


@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
def test_scale_channels(graph, data_format):
    rng = np.random.RandomState(4)
    value = rng.normal(size=(2, 3, 4, 5)).astype(np.float16)  # NHWC
    gate = rng.uniform(size=(2, 5))
    laid_out = value if data_format == 'NHWC' else value.transpose(0, 3, 1, 2)
    inputs = tf.constant(laid_out)
    out = _layers.scale_channels(inputs, tf.constant(gate, tf.float32), 5,
                                data_format)
    assert out.dtype == tf.float16
    with tf1.Session() as sess:
        result = sess.run(out)
    if data_format == 'NCHW':
        result = result.transpose(0, 2, 3, 1)
    reference = value * gate.astype(np.float32).astype(np.float16)[:, None, None, :]
    np.testing.assert_array_equal(result, reference)


def _mlp_gate_args(x, **kwargs):
    merged = dict(reduction_ratio=None, inner_units_ratio=None,
                  activation_fn=tf.nn.relu, gate_fn=tf.sigmoid,
                  weights_initializer=None, weights_regularizer=None,
                  biases_initializer=tf1.zeros_initializer(),
                  biases_regularizer=None, trainable=True,
                  variables_collections=None, data_format='NHWC')
    merged.update(kwargs)
    return _layers.mlp_gate_args(x, **merged)


def test_mlp_gate_args_resolves_defaults(graph):
    x = tf1.placeholder(tf.float16, [None, 4, 4, 64])
    dtype, channels, units, args = _mlp_gate_args(x, trainable=False)
    assert (dtype, channels, units) == (tf.float16, 64, 4)  # r = 16
    assert args.dtype == tf.float32 and args.trainable is False
    init = args.weights_initializer  # PyTorch's default Linear init
    assert (init.scale, init.mode, init.distribution) == (1.0 / 3.0, 'fan_in', 'uniform')
    mine = tf1.ones_initializer()
    _, _, units, args = _mlp_gate_args(x, inner_units_ratio=0.5,
                                       weights_initializer=mine)
    assert units == 32 and args.weights_initializer is mine
    assert len(graph.get_operations()) == 1  # only the placeholder


@pytest.mark.parametrize('kwargs,error,message', [
    ({'data_format': 'NCWH', 'reduction_ratio': 0}, ValueError, 'data_format'),
    ({'reduction_ratio': 0, 'activation_fn': 1}, ValueError, 'reduction_ratio'),
    ({'activation_fn': 1, 'gate_fn': 2}, TypeError, 'activation_fn must be callable'),
    ({'gate_fn': 2}, TypeError, 'gate_fn must be callable'),
])
def test_mlp_gate_args_checks_in_order(graph, kwargs, error, message):
    x = tf1.placeholder(tf.int32, [None, 4, 4, 64])  # also bad, checked last
    with pytest.raises(error, match=message):
        _mlp_gate_args(x, **kwargs)



@pytest.mark.parametrize('dtype,compute', [(tf.float16, tf.float32), (tf.bfloat16, tf.float32),
                                           (tf.float32, tf.float32), (tf.float64, tf.float64)])
def test_layer_args_compute_dtype_and_default_initializer(dtype, compute):
    default, mine = tf1.zeros_initializer(), tf1.ones_initializer()
    args = _layers.layer_args(dtype, None, 'wr', 'bi', 'br', False, ['c'], default)
    assert args == _layers.LayerArgs(compute, default, 'wr', 'bi', 'br', False, ['c'])
    assert _layers.layer_args(dtype, mine, None, None, None, True, None,
                              default).weights_initializer is mine
