"""The fused pooling and softmax ops of the attention blocks and their registered
gradients (slim_attention.attention._fused_ops), against TensorFlow's plain ops
and NumPy."""
import numpy as np
import pytest
import tensorflow as tf

import slim_attention as slim
from slim_attention.attention import _fused_ops
from slim_attention.attention import _layers

from meta_graph_check import gradients_survive_a_new_process

tf1 = tf.compat.v1
EAGER_ONLY = pytest.mark.tf_behavior(
    'v2', reason='eager execution, which disable_v2_behavior() turns off')


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
    mean, peak = _fused_ops.mean_and_max(x, axis)
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
    mean, peak = _fused_ops.mean_and_max(x, [1, 2])
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
    mean = _fused_ops.mean_pool(x, axis)
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
    out = getattr(_fused_ops, pool)(x, [1, 2])
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
    for fn in (lambda t: getattr(_fused_ops, pool)(t, [1, 2]), plain[pool]):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outs = fn(x)
            outs = outs if isinstance(outs, tuple) else (outs,)
            loss = tf.add_n([tf.reduce_sum(o * w) for o, w in zip(outs, weights)])
        grads.append(tape.gradient(loss, x).numpy())
        values = [o.numpy() for o in outs]
        np.testing.assert_allclose(values[0], x.numpy().mean(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def _four_blocks():
    x = tf1.placeholder(tf.float32, [2, 8, 8, 16], name='x')
    net = slim.squeeze_and_excitation(x, reduction_ratio=4)
    net = slim.convolutional_block_attention_module(net, reduction_ratio=4)
    net = slim.non_local_block(net, subsample=True, zero_init_last=False)
    net = slim.global_context(net, reduction_ratio=4, zero_init_last=False)
    return net, [x]


def test_exported_meta_graph_can_be_differentiated_in_a_new_process(tmp_path,
                                                                    run_in_new_processes):
    # TF1 habit: import_meta_graph, then build a training op on top. The fused
    # pooling gradients are registered by name when slim_attention is imported,
    # so they are found in a process that did not build the graph.
    value = np.random.RandomState(0).normal(size=(2, 8, 8, 16))
    assert 'same gradients' in gradients_survive_a_new_process(
        tmp_path, run_in_new_processes, _four_blocks, value, 'slim_attention')


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
    y = _fused_ops.softmax_attention(logits, values, transposed=transposed)
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
    loss = tf.reduce_sum(tf.sin(_fused_ops.softmax_attention(logits, values)))
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
        y = _fused_ops.softmax_attention(logits, values)
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
        mask_args = _layers.LayerArgs(tf.float64, tf1.glorot_uniform_initializer(),
                                       None, tf1.zeros_initializer(), None, True, None)
        context = _fused_ops.attention_pool(x, mask_args, data_format)
    kernel, bias = tf1.global_variables()
    assert [kernel.op.name, bias.op.name] == ['gc/conv_mask/weights', 'gc/conv_mask/biases']
    # The same function from plain ops (TensorFlow's own gradients).
    logits = tf.reshape(tf.nn.bias_add(_layers.pointwise(x, kernel, data_format), bias,
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

