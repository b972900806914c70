"""Behaviour every attention block shares: the slim layer contract.

Shapes and dtypes, pinned variable names, parameter counts, the NumPy
reference in NHWC and NCHW, reuse, trainable, regularizers, collections,
arg_scope, gradients, unknown sizes and a Saver round trip.
"""
import numpy as np
import pytest
import tensorflow as tf

import attention_cases as cases
import slim_attention as slim
from attention_cases import CASES, CASE_IDS

tf1 = tf.compat.v1
C = 32
SHAPE = (2, 5, 6, C)


def _build(case, x, **kwargs):
    merged = dict(case.kwargs)
    merged.update(kwargs)
    return case.fn(x, **merged)


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
@pytest.mark.parametrize('dtype', [tf.float32, tf.float16, tf.bfloat16])
def test_output_shape_and_dtype(graph, case, data_format, dtype):
    x = cases.placeholder(SHAPE, data_format, dtype)
    y = _build(case, x, data_format=data_format)
    assert y.dtype == dtype
    assert y.shape.as_list() == x.shape.as_list()
    value = np.random.RandomState(0).rand(*x.shape.as_list())
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        out = sess.run(y, {x: value})
    assert out.shape == value.shape
    assert out.dtype == dtype.as_numpy_dtype
    assert np.all(np.isfinite(out.astype(np.float32)))


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
def test_variable_names_and_shapes_are_pinned(graph, case, data_format):
    x = cases.placeholder(SHAPE, data_format)
    y = _build(case, x, data_format=data_format)
    assert y.op.name.startswith(case.scope + '/')
    variables = cases.scope_variables(case.scope)
    assert cases.relative_shapes(variables, case.scope) == case.variables(C)
    assert set(variables) <= set(tf1.get_collection(tf1.GraphKeys.MODEL_VARIABLES))


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16, tf.float64])
def test_variable_dtype_policy(graph, dtype):
    """Half inputs keep float32 variables; float32/float64 inputs use their own dtype."""
    x = cases.placeholder(SHAPE, dtype=dtype)
    slim.convolutional_block_attention_module(x)
    expected = tf.float64 if dtype == tf.float64 else tf.float32
    assert {v.dtype.base_dtype for v in tf1.global_variables()} == {expected}


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
@pytest.mark.parametrize('channels,ratio', [(32, None), (24, 4), (7, 16), (10, 3)])
def test_param_count_equals_spec_formula(graph, case, channels, ratio):
    x = cases.placeholder((None, None, None, channels))
    kwargs = {}
    formula_args = ()
    if ratio is not None and case.name in ('se', 'channel', 'cbam', 'gc', 'nl'):
        kwargs['reduction_ratio'] = ratio
        formula_args = (ratio,)
    _build(case, x, **kwargs)
    trainable = tf1.trainable_variables()
    assert cases.count_params(trainable) == case.params(channels, *formula_args)


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
def test_output_matches_numpy_reference(graph, case, data_format):
    is_training = tf1.placeholder_with_default(True, [], name='is_training')
    x = cases.placeholder((None, None, None, C), data_format, tf.float64)
    kwargs = {'data_format': data_format}
    if case.has_bn:
        kwargs['is_training'] = is_training
    y = _build(case, x, **kwargs)
    rng = np.random.RandomState(1)
    value = rng.normal(size=SHAPE)
    with tf1.Session() as sess:
        weights = cases.set_random_weights(
            sess, cases.scope_variables(case.scope), case.scope)
        for training in ([True, False] if case.has_bn else [True]):
            out = sess.run(y, {x: cases.to_layout(value, data_format),
                               is_training: training})
            expected = case.reference(value, weights, training)
            np.testing.assert_allclose(cases.from_layout(out, data_format),
                                       expected, rtol=1e-6, atol=1e-8)
            assert not np.allclose(expected, value)  # the block does something


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_float32_output_matches_reference(graph, case):
    x = cases.placeholder(SHAPE)
    y = _build(case, x)
    value = np.random.RandomState(2).normal(size=SHAPE)
    with tf1.Session() as sess:
        weights = cases.set_random_weights(
            sess, cases.scope_variables(case.scope), case.scope)
        out = sess.run(y, {x: value.astype(np.float32)})
    np.testing.assert_allclose(out, case.reference(value, weights, True),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_reuse_shares_variables(graph, case):
    x = cases.placeholder(SHAPE)
    y1 = _build(case, x, scope='block')
    n = len(tf1.global_variables())
    y2 = _build(case, x, scope='block', reuse=True)
    assert len(tf1.global_variables()) == n
    _build(case, x)  # default scope: a fresh set of variables
    _build(case, x)  # uniquified default scope: another one
    assert len(tf1.global_variables()) == 3 * n
    names = {v.op.name.split('/')[0] for v in tf1.global_variables()}
    assert names == {'block', case.scope, case.scope + '_1'}
    value = np.random.RandomState(3).rand(*SHAPE)
    with tf1.Session() as sess:
        cases.set_random_weights(sess, cases.scope_variables('block'), 'block')
        a, b = sess.run([y1, y2], {x: value})
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_trainable_false(graph, case):
    x = cases.placeholder(SHAPE)
    _build(case, x, trainable=False)
    assert tf1.trainable_variables() == []
    assert len(tf1.global_variables()) == len(case.variables(C))
    assert len(tf1.get_collection(tf1.GraphKeys.MODEL_VARIABLES)) == len(case.variables(C))


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_regularizers_land_in_regularization_losses(graph, case):
    x = cases.placeholder(SHAPE)
    kwargs = {'weights_regularizer': lambda w: tf.reduce_sum(tf.square(w)),
              'biases_regularizer': lambda b: 10.0 * tf.reduce_sum(tf.abs(b))}
    if case.name in ('sam', 'eca'):  # no bias by default: ask for one
        kwargs['biases_initializer'] = tf1.zeros_initializer()
    _build(case, x, **kwargs)
    losses = tf1.get_collection(tf1.GraphKeys.REGULARIZATION_LOSSES)
    variables = tf1.global_variables()
    weights = [v for v in variables if v.op.name.endswith('/weights')]
    biases = [v for v in variables if v.op.name.endswith('/biases')]
    assert len(losses) == len(weights) + len(biases)
    with tf1.Session() as sess:
        cases.set_random_weights(sess, variables, case.scope)
        total, ws, bs = sess.run([tf.add_n(losses), weights, biases])
    expected = sum((w ** 2).sum() for w in ws) + 10 * sum(np.abs(b).sum() for b in bs)
    np.testing.assert_allclose(total, expected, rtol=1e-5)


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_variables_and_outputs_collections(graph, case):
    x = cases.placeholder(SHAPE)
    y = _build(case, x, variables_collections=['my_vars'],
               outputs_collections='my_outputs')
    assert set(tf1.get_collection('my_vars')) == set(tf1.global_variables())
    assert tf1.get_collection('my_outputs') == [y]
    assert y.aliases == [case.scope]


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_arg_scope_on_the_function_applies(graph, case):
    x = cases.placeholder(SHAPE)
    with slim.arg_scope([case.fn], **case.scoped_kwargs):
        _build(case, x)
    name, shape = case.scoped_variable
    shapes = cases.relative_shapes(tf1.global_variables(), case.scope)
    assert shapes[name] == shape(C)
    assert shape(C) != case.variables(C)[name]


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_arg_scope_on_slim_layers_does_not_leak(graph, case):
    x = cases.placeholder(SHAPE)
    y_plain = _build(case, x, scope='plain')
    with slim.arg_scope([slim.conv2d, slim.fully_connected, slim.conv1d,
                         slim.separable_conv2d],
                        activation_fn=tf.nn.tanh,
                        normalizer_fn=slim.batch_norm,
                        weights_initializer=tf1.ones_initializer(),
                        weights_regularizer=lambda w: tf.reduce_sum(w),
                        biases_initializer=None):
        with slim.arg_scope([slim.batch_norm], scale=False, center=False,
                            epsilon=0.5, decay=0.1, is_training=False):
            with slim.arg_scope([slim.layer_norm], center=False, scale=False,
                                activation_fn=tf.nn.tanh):
                y_scoped = _build(case, x, scope='scoped')
    assert tf1.get_collection(tf1.GraphKeys.REGULARIZATION_LOSSES) == []
    assert (cases.relative_shapes(cases.scope_variables('plain'), 'plain')
            == cases.relative_shapes(cases.scope_variables('scoped'), 'scoped'))
    value = np.random.RandomState(4).normal(size=SHAPE)
    with tf1.Session() as sess:
        w = cases.set_random_weights(sess, cases.scope_variables('plain'), 'plain')
        for v in cases.scope_variables('scoped'):
            v.load(w[v.op.name[len('scoped/'):]].astype(np.float32), sess)
        a, b = sess.run([y_plain, y_scoped], {x: value})
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_gradients_reach_every_variable(graph, case):
    x = cases.placeholder(SHAPE, dtype=tf.float64)
    y = _build(case, x)
    upstream = tf.constant(np.random.RandomState(5).normal(size=SHAPE))
    loss = tf.reduce_sum(y * upstream)
    variables = tf1.trainable_variables()
    grads = tf.gradients(loss, variables + [x])
    assert all(g is not None for g in grads)
    with tf1.Session() as sess:
        cases.set_random_weights(sess, tf1.global_variables(), case.scope)
        values = sess.run(grads, {x: np.random.RandomState(6).normal(size=SHAPE)})
    zero_by_math = cases.ZERO_GRADIENT_BY_MATH.get(case.name, set())
    for v, g in zip(variables + [x], values):
        name = v.op.name[len(case.scope) + 1:]
        if name in zero_by_math:
            np.testing.assert_allclose(g, 0.0, atol=1e-10)
        else:
            assert np.abs(g).max() > 1e-8, name


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_float64_gradient_check(graph, case):
    shape = (2, 3, 4, 8)
    x = cases.placeholder(shape, dtype=tf.float64)
    kwargs = {'reduction_ratio': 2} if case.name in ('se', 'channel', 'gc') else {}
    y = _build(case, x, **kwargs)
    value = np.random.RandomState(7).normal(size=shape)
    with tf1.Session() as sess:
        cases.set_random_weights(sess, tf1.global_variables(), case.scope)
        err = tf1.test.compute_gradient_error(x, list(shape), y, list(shape),
                                              x_init_value=value)
    assert err < 1e-6


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
def test_unknown_batch_and_spatial_sizes(graph, case, data_format):
    x = cases.placeholder((None, None, None, C), data_format)
    y = _build(case, x, data_format=data_format)
    assert y.shape.as_list() == x.shape.as_list()
    rng = np.random.RandomState(8)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        for shape in [(1, 3, 4, C), (3, 7, 2, C), (2, 1, 1, C)]:
            value = cases.to_layout(rng.rand(*shape), data_format)
            assert sess.run(y, {x: value}).shape == value.shape


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_saver_round_trip(tmp_path, case):
    value = np.random.RandomState(9).normal(size=SHAPE).astype(np.float32)
    path = str(tmp_path / 'model.ckpt')
    outputs = []
    for restore in (False, True):
        with tf.Graph().as_default():
            x = cases.placeholder(SHAPE)
            y = _build(case, x, **({'is_training': False} if case.has_bn else {}))
            saver = tf1.train.Saver()
            with tf1.Session() as sess:
                if restore:
                    saver.restore(sess, path)
                else:
                    cases.set_random_weights(sess, tf1.global_variables(),
                                             case.scope)
                    saver.save(sess, path)
                outputs.append(sess.run(y, {x: value}))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    with tf.Graph().as_default():  # a fresh initialisation differs
        x = cases.placeholder(SHAPE)
        y = _build(case, x, **({'is_training': False} if case.has_bn else {}))
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            assert not np.allclose(sess.run(y, {x: value}), outputs[0])
