"""The shared private helpers of the attention blocks (slim_attention.attention._utils).

Each helper is the one place a piece of the blocks' logic lives (variable
creation with an optional bias, the SE/CBAM MLP, the channel-gate epilogue,
the input contract, the compute-dtype cast); these tests pin it directly
against NumPy, independently of any block.
"""
import numpy as np
import pytest
import tensorflow as tf

from slim_attention.attention import _utils

tf1 = tf.compat.v1
EAGER_ONLY = pytest.mark.tf_behavior(
    'v2', reason='eager execution, which disable_v2_behavior() turns off')


def _args(dtype=tf.float64, biases_initializer=tf1.zeros_initializer(),
          collections=None, weights_regularizer=None, biases_regularizer=None):
    return _utils.LayerArgs(dtype, tf1.glorot_uniform_initializer(),
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
    args = _args(biases_initializer=tf1.zeros_initializer() if with_bias else None,
                 collections={'weights': ['W'], 'biases': ['B']},
                 weights_regularizer=tf.reduce_sum, biases_regularizer=tf.reduce_sum)
    y = _utils.weighted_layer(x, tf.matmul, [3, 4], args, 'layer')
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
    y = _utils.conv1x1(x, 6, _args(), 'NCHW', 'conv')
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
    args = _args()
    zero = args._replace(weights_initializer=tf1.zeros_initializer())
    x = tf.constant(np.ones((1, 2)))
    _utils.dense(x, 2, args, 'a')
    _utils.dense(x, 2, zero, 'b')
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        a, b = sess.run([v for name in ('a/weights', 'b/weights')
                         for v in tf1.global_variables() if v.op.name == name])
    assert np.abs(a).max() > 0 and not b.any()
    assert args.weights_initializer is not zero.weights_initializer


def test_mlp_matches_numpy(graph):
    x = tf1.placeholder(tf.float64, [None, 8])
    y = _utils.mlp(x, 3, tf.nn.relu, _args())
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
    out = _utils.scale_channels(inputs, tf.constant(gate, tf.float32), 5,
                                data_format)
    assert out.dtype == tf.float16
    with tf1.Session() as sess:
        result = sess.run(out)
    if data_format == 'NCHW':
        result = result.transpose(0, 2, 3, 1)
    reference = value * gate.astype(np.float32).astype(np.float16)[:, None, None, :]
    np.testing.assert_array_equal(result, reference)


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16, tf.float32, tf.float64])
def test_cast_in_uses_compute_dtype(graph, dtype):
    x = tf1.placeholder(dtype, [1, 2, 2, 3])
    cdtype = _utils.compute_dtype(dtype)
    n = len(graph.get_operations())
    inputs, compute = _utils.cast_in(x, dtype, cdtype)
    assert inputs is x
    assert compute.dtype == (tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype)
    if cdtype == dtype:
        assert compute is x and len(graph.get_operations()) == n  # no cast op


def test_cast_in_converts_arrays(graph):
    inputs, compute = _utils.cast_in(np.ones((1, 2, 2, 3)), tf.float64, tf.float64)
    assert tf.is_tensor(inputs) and inputs.dtype == tf.float64 and compute is inputs


@pytest.mark.parametrize('data_format,shape,channels', [
    ('NHWC', [None, 5, 6, 7], 7), ('NCHW', [None, 7, 5, 6], 7)])
def test_check_inputs_returns_dtype_and_channels(graph, data_format, shape, channels):
    x = tf1.placeholder(tf.float16, shape)
    assert _utils.check_inputs(x, data_format) == (tf.float16, channels)


@pytest.mark.parametrize('shape,dtype,error,message', [
    ([2, 5, 7], tf.float32, ValueError, r'inputs must have rank 4 \(NHWC\), got shape'),
    ([2, 5, 5, None], tf.float32, ValueError, 'known number of channels'),
    ([2, 5, 5, 3], tf.int32, TypeError,
     'inputs must be a floating point tensor, got dtype int32'),
])
def test_check_inputs_errors(graph, shape, dtype, error, message):
    with pytest.raises(error, match=message):
        _utils.check_inputs(tf1.placeholder(dtype, shape), 'NHWC')


@pytest.mark.parametrize('zero_init_last,expected', [(True, 0.0), (False, 1.0)])
def test_gamma_initializer(graph, zero_init_last, expected):
    v = tf1.get_variable('gamma', [3], initializer=_utils.gamma_initializer(zero_init_last))
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(v), np.full(3, expected))


def _mlp_gate_args(x, **kwargs):
    merged = dict(reduction_ratio=None, inner_units_ratio=None,
                  activation_fn=tf.nn.relu, gate_fn=tf.sigmoid,
                  weights_initializer=None, weights_regularizer=None,
                  biases_initializer=tf1.zeros_initializer(),
                  biases_regularizer=None, trainable=True,
                  variables_collections=None, data_format='NHWC')
    merged.update(kwargs)
    return _utils.mlp_gate_args(x, **merged)


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


@pytest.mark.parametrize('name', ['squeeze_and_excitation', 'channel_attention',
                                  'spatial_attention', 'global_context',
                                  'efficient_channel_attention', 'non_local_block'])
def test_python_int_lists_are_refused_before_any_op(graph, name):
    import slim_attention
    block = getattr(slim_attention, name)
    ops_before = len(graph.get_operations())
    with pytest.raises(TypeError, match='inputs must be floating point.*int'):
        block([[[[1, 2], [3, 4]]]])
    assert len(graph.get_operations()) == ops_before


def test_python_float_lists_still_work(graph):
    import slim_attention
    out = slim_attention.squeeze_and_excitation([[[[1.0, 2.0], [3.0, 4.0]]]])
    assert out.dtype == tf.float32 and out.shape.as_list() == [1, 1, 2, 2]


# --------------------------------------------------------------------------
# mean_and_max: the two reductions with one fused gradient
# --------------------------------------------------------------------------
def _numpy_mean_max_grad(x, axes, d_mean, d_max):
    """TensorFlow's documented reduction gradients, written in NumPy: the mean's
    gradient spread evenly, the max's split evenly between tied maxima."""
    n = np.prod([x.shape[a] for a in axes])
    is_max = x == x.max(axis=tuple(axes), keepdims=True)
    ties = is_max.sum(axis=tuple(axes), keepdims=True)
    return (np.expand_dims(d_mean, axes) / n
            + is_max * np.expand_dims(d_max, axes) / ties)


@pytest.mark.parametrize('shape,axis', [
    ((2, 5, 4, 3), [1, 2]),   # NHWC spatial pooling (channel gate)
    ((2, 3, 5, 4), [2, 3]),   # NCHW spatial pooling
    ((2, 5, 4, 3), 3),        # NHWC channel pooling (spatial gate)
    ((2, 3, 5, 4), 1),        # NCHW channel pooling
    ((2, 5, 4, 3), -1),       # a negative axis
])
def test_mean_and_max_values_and_gradient_with_ties(graph, shape, axis):
    # Small integers: most reductions have tied maxima, the case where the max
    # gradient must be split.
    rng = np.random.RandomState(0)
    value = rng.randint(-2, 3, size=shape).astype(np.float64)
    axes = [a % len(shape) for a in ([axis] if isinstance(axis, int) else axis)]
    x = tf1.placeholder(tf.float64, [None] * len(shape))  # nothing static
    mean, peak = _utils.mean_and_max(x, axis)
    out_shape = [s for i, s in enumerate(shape) if i not in axes]
    d_mean = rng.normal(size=out_shape)
    d_max = rng.normal(size=out_shape)
    grad, = tf.gradients([mean, peak], [x], grad_ys=[d_mean, d_max])
    # Independent reference: TensorFlow's own gradients of the plain reductions.
    tf_grad, = tf.gradients([tf.reduce_mean(x, axis), tf.reduce_max(x, axis)], [x],
                            grad_ys=[d_mean, d_max])
    with tf1.Session() as sess:
        m, p, g, tg = sess.run([mean, peak, grad, tf_grad], {x: value})
    assert (value == value.max(axis=tuple(axes), keepdims=True)).sum() > np.prod(
        out_shape), 'the data must contain ties'
    np.testing.assert_allclose(m, value.mean(axis=tuple(axes)), rtol=1e-12)
    np.testing.assert_array_equal(p, value.max(axis=tuple(axes)))
    np.testing.assert_allclose(g, _numpy_mean_max_grad(value, axes, d_mean, d_max),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-15)


def test_mean_and_max_numerical_gradient(graph):
    value = np.random.RandomState(2).normal(size=(2, 3, 3, 4))
    x = tf.constant(value)
    mean, peak = _utils.mean_and_max(x, [1, 2])
    loss = tf.reduce_sum(tf.sin(mean) * tf.cos(peak))
    with tf1.Session():
        # x_init_value: without it compute_gradient feeds x a fresh draw of
        # NumPy's global generator, where two values of a pool can lie within
        # the finite difference's delta and make the max's numerical
        # gradient wrong (a flaky test).
        theoretical, numerical = tf1.test.compute_gradient(
            x, [2, 3, 3, 4], loss, [], x_init_value=value)
    np.testing.assert_allclose(theoretical, numerical, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize('shape,axis', [((2, 5, 4, 3), [1, 2]), ((2, 3, 5, 4), [2, 3]),
                                        ((2, 5, 4, 3), -1)])
def test_mean_pool_values_and_gradient(graph, shape, axis):
    rng = np.random.RandomState(3)
    value = rng.normal(size=shape)
    axes = [axis] if isinstance(axis, int) else axis
    x = tf1.placeholder(tf.float64, [None] * len(shape))
    mean = _utils.mean_pool(x, axis)
    d_mean = rng.normal(size=[s for i, s in enumerate(shape)
                              if i not in [a % len(shape) for a in axes]])
    grad, = tf.gradients(mean, [x], grad_ys=d_mean)
    tf_grad, = tf.gradients(tf.reduce_mean(x, axis), [x], grad_ys=d_mean)
    with tf1.Session() as sess:
        m, g, tg = sess.run([mean, grad, tf_grad], {x: value})
    np.testing.assert_allclose(m, value.mean(axis=tuple(axes)), rtol=1e-12)
    n = np.prod([shape[a] for a in axes])
    np.testing.assert_allclose(
        g, np.broadcast_to(np.expand_dims(d_mean, axes) / n, shape), rtol=1e-12)
    np.testing.assert_allclose(g, tg, rtol=1e-12)


@pytest.mark.parametrize('pool', ['mean_pool', 'mean_and_max'])
def test_pooling_helpers_take_an_empty_batch(graph, pool):
    x = tf1.placeholder(tf.float32, [None, None, None, 3])
    out = getattr(_utils, pool)(x, [1, 2])
    grad, = tf.gradients(out, [x])
    with tf1.Session() as sess:
        o, g = sess.run([out, grad], {x: np.zeros((0, 4, 4, 3), np.float32)})
    assert np.shape(o)[-2:] == (0, 3) and g.shape == (0, 4, 4, 3)


@pytest.mark.parametrize('block', ['channel_attention', 'spatial_attention'])
def test_cbam_gates_input_gradient_sums_two_terms(graph, block):
    # The input's gradient comes from the pooling and from the gating multiply
    # only: tf.gradients sums two tensors, not three (an AddN of three
    # full-size tensors, which Grappler's memory optimizer may lower to a slow
    # TemporaryVariable/AssignAdd chain).
    import slim_attention as slim
    x = tf1.placeholder(tf.float32, [2, 8, 8, 32])
    grad, = tf.gradients(getattr(slim, block)(x), [x])
    assert grad.op.type == 'AddN' and len(grad.op.inputs) == 2, (
        grad.op.type, [t.op.type for t in grad.op.inputs])


@EAGER_ONLY
@pytest.mark.parametrize('pool', ['mean_pool', 'mean_and_max'])
def test_pooling_helpers_in_eager_mode(pool):
    # Eager: the graph-mode gradient override does not apply; IdentityN passes
    # the gradients to the plain reductions, which must give TensorFlow's values.
    assert tf.executing_eagerly()
    rng = np.random.RandomState(4)
    x = tf.constant(rng.randint(-2, 3, size=(2, 4, 4, 3)).astype(np.float64))
    weights = [tf.constant(rng.normal(size=(2, 3))) for _ in range(2)]
    plain = {'mean_pool': lambda t: (tf.reduce_mean(t, [1, 2]),),
             'mean_and_max': lambda t: (tf.reduce_mean(t, [1, 2]), tf.reduce_max(t, [1, 2]))}
    grads = []
    for fn in (lambda t: getattr(_utils, pool)(t, [1, 2]), plain[pool]):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outs = fn(x)
            outs = outs if isinstance(outs, tuple) else (outs,)
            loss = tf.add_n([tf.reduce_sum(o * w) for o, w in zip(outs, weights)])
        grads.append(tape.gradient(loss, x).numpy())
        values = [o.numpy() for o in outs]
        np.testing.assert_allclose(values[0], x.numpy().mean(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


_EXPORT_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
import slim_attention as slim
tf1 = tf.compat.v1
graph = tf.Graph()
with graph.as_default():
    x = tf1.placeholder(tf.float32, [2, 8, 8, 16], name='x')
    net = slim.squeeze_and_excitation(x, reduction_ratio=4)
    net = slim.convolutional_block_attention_module(net, reduction_ratio=4)
    net = slim.non_local_block(net, subsample=True, zero_init_last=False)
    net = slim.global_context(net, reduction_ratio=4, zero_init_last=False)
    y = tf.identity(net, name='y')
    grad, = tf.gradients(tf.reduce_sum(tf.sin(y)), [x])
    init = tf1.global_variables_initializer()
    saver = tf1.train.Saver()
    with tf1.Session() as sess:
        sess.run(init)
        value = np.random.RandomState(0).normal(size=(2, 8, 8, 16))
        np.save(sys.argv[1] + '/grad.npy', sess.run(grad, {x: value}))
        np.save(sys.argv[1] + '/x.npy', value)
        saver.save(sess, sys.argv[1] + '/model')
"""

_IMPORT_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
import slim_attention  # registers the blocks' gradients
tf1 = tf.compat.v1
graph = tf.Graph()
with graph.as_default():
    saver = tf1.train.import_meta_graph(sys.argv[1] + '/model.meta')
    x = graph.get_tensor_by_name('x:0')
    y = graph.get_tensor_by_name('y:0')
    grad, = tf.gradients(tf.reduce_sum(tf.sin(y)), [x])
    with tf1.Session() as sess:
        saver.restore(sess, sys.argv[1] + '/model')
        got = sess.run(grad, {x: np.load(sys.argv[1] + '/x.npy')})
np.testing.assert_allclose(got, np.load(sys.argv[1] + '/grad.npy'), rtol=1e-5, atol=1e-7)
print('same gradient')
"""


def test_exported_meta_graph_can_be_differentiated_in_a_new_process(run_in_new_processes):
    # TF1 habit: import_meta_graph, then build a training op on top. The fused
    # pooling gradients are registered by name when slim_attention is imported,
    # so they are found in a process that did not build the graph.
    assert 'same gradient' in run_in_new_processes(_EXPORT_SCRIPT, _IMPORT_SCRIPT)


@pytest.mark.parametrize('transposed', [False, True])
@pytest.mark.parametrize('width,static', [
    (4, True),    # C < L: row sums from dy * y
    (7, True),    # C > L: row sums from dA * A
    (4, False),   # shapes unknown: row sums from dA * A
])
def test_softmax_attention_matches_tensorflows_softmax_and_matmul(graph, transposed,
                                                                   width, static):
    rng = np.random.RandomState(5)
    logits_value = 3.0 * rng.normal(size=(2, 6, 5))     # [N, M, L], L = 5
    values_shape = (2, width, 5) if transposed else (2, 5, width)
    values_value = rng.normal(size=values_shape)
    logits = tf1.placeholder(tf.float64, (2, 6, 5) if static else [None] * 3)
    values = tf1.placeholder(tf.float64, values_shape if static else [None] * 3)
    y = _utils.softmax_attention(logits, values, transposed=transposed)
    attention = tf.nn.softmax(logits, -1)
    plain = (tf.matmul(values, attention, transpose_b=True) if transposed
             else tf.matmul(attention, values))
    d_y = rng.normal(size=(2, width, 6) if transposed else (2, 6, width))
    grads = tf.gradients(y, [logits, values], grad_ys=d_y)
    plain_grads = tf.gradients(plain, [logits, values], grad_ys=d_y)
    feed = {logits: logits_value, values: values_value}
    with tf1.Session() as sess:
        out, g, pg = sess.run([y, grads, plain_grads], feed)
    # NumPy reference of the forward pass.
    e = np.exp(logits_value - logits_value.max(-1, keepdims=True))
    a = e / e.sum(-1, keepdims=True)
    expected = (values_value @ a.transpose(0, 2, 1)) if transposed else a @ values_value
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    for got, want in zip(g, pg):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_softmax_attention_numerical_gradient(graph):
    rng = np.random.RandomState(6)
    logits = tf.constant(rng.normal(size=(2, 3, 4)))
    values = tf.constant(rng.normal(size=(2, 4, 2)))
    loss = tf.reduce_sum(tf.sin(_utils.softmax_attention(logits, values)))
    with tf1.Session():
        for t, shape in ((logits, [2, 3, 4]), (values, [2, 4, 2])):
            theoretical, numerical = tf1.test.compute_gradient(t, shape, loss, [])
            np.testing.assert_allclose(theoretical, numerical, rtol=1e-6, atol=1e-8)


@EAGER_ONLY
def test_softmax_attention_in_eager_mode():
    assert tf.executing_eagerly()
    rng = np.random.RandomState(7)
    logits = tf.constant(rng.normal(size=(2, 3, 4)))
    values = tf.constant(rng.normal(size=(2, 4, 2)))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([logits, values])
        y = _utils.softmax_attention(logits, values)
        plain = tf.matmul(tf.nn.softmax(logits, -1), values)
    np.testing.assert_allclose(y.numpy(), plain.numpy(), rtol=1e-12)
    for t in (logits, values):
        np.testing.assert_allclose(tape.gradient(y, t).numpy(),
                                   tape.gradient(plain, t).numpy(), rtol=1e-12)


@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
def test_attention_pool_gradients_match_the_plain_ops(graph, data_format):
    rng = np.random.RandomState(8)
    shape = (2, 3, 4, 5) if data_format == 'NHWC' else (2, 5, 3, 4)
    x = tf1.placeholder(tf.float64, shape)
    with tf1.variable_scope('gc'):
        context = _utils.attention_pool(x, _args(), data_format)
    kernel, bias = tf1.global_variables()
    assert [kernel.op.name, bias.op.name] == ['gc/conv_mask/weights', 'gc/conv_mask/biases']
    # The same function from plain ops (TensorFlow's own gradients).
    logits = tf.reshape(tf.nn.bias_add(_utils.pointwise(x, kernel, data_format), bias,
                                       data_format=data_format), [2, -1])
    attention = tf.nn.softmax(logits)
    if data_format == 'NHWC':
        plain = tf.matmul(attention[:, None, :], tf.reshape(x, [2, -1, 5]))
    else:
        plain = tf.matmul(tf.reshape(x, [2, 5, -1]), attention[:, :, None])
    upstream = rng.normal(size=plain.shape.as_list())
    grads = tf.gradients(tf.reduce_sum(tf.sin(context) * upstream), [x, kernel, bias])
    plain_grads = tf.gradients(tf.reduce_sum(tf.sin(plain) * upstream), [x, kernel, bias])
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        kernel.load(rng.normal(size=(1, 1, 5, 1)), sess)
        bias.load([0.3], sess)
        feed = {x: rng.normal(size=shape)}
        c, p, g, pg = sess.run([context, plain, grads, plain_grads], feed)
    np.testing.assert_allclose(c, p, rtol=1e-12)
    for got, want in zip(g, pg):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_static_dim_is_an_int_or_none_in_both_behaviours(graph):
    # Under disable_v2_behavior() tensor.shape[i] is a Dimension; the blocks
    # read static sizes through static_dim only.
    x = tf1.placeholder(tf.float32, [None, 5, None, 3])
    dims = [_utils.static_dim(x, axis) for axis in range(4)]
    assert dims == [None, 5, None, 3]
    assert [type(d) for d in dims] == [type(None), int, type(None), int]
    assert _utils.static_dim(x.shape, -1) == 3
    assert _utils.static_dim(np.zeros((2, 7)), 1) == 7
    assert _utils.static_dim(tf1.placeholder(tf.float32, None), 0) is None
