"""What is particular to each block: variants, initial state, maps, errors."""
import numpy as np
import pytest
import tensorflow as tf

import attention_cases as cases
import attention_reference as ref
import slim_attention as slim
from attention_cases import CASES, CASE_IDS
from slim_attention.attention.eca import adaptive_kernel_size

tf1 = tf.compat.v1
C = 16
SHAPE = (2, 5, 7, C)


_var = cases.variable


def _random_input(seed=0, shape=SHAPE):
    return np.random.RandomState(seed).normal(size=shape)


# ---------------------------------------------------------------- CBAM / SAM
def test_cbam_vgg_tutorial_call(graph):
    """``convolutional_block_attention_module(feature_map, index=0)`` and repeats."""
    x = cases.placeholder((None, 7, 7, 512))
    y = slim.convolutional_block_attention_module(x, index=0, inner_units_ratio=0.5)
    slim.convolutional_block_attention_module(y, index=0, inner_units_ratio=0.5)
    slim.convolutional_block_attention_module(y, index=1)
    shapes = {v.op.name: tuple(v.shape.as_list()) for v in tf1.global_variables()}
    assert shapes['cbam_0/ChannelAttention/fc1/weights'] == (512, 256)
    assert shapes['cbam_0_1/ChannelAttention/fc2/weights'] == (256, 512)
    assert shapes['cbam_1/ChannelAttention/fc1/weights'] == (512, 32)
    assert shapes['cbam_0/SpatialAttention/conv/weights'] == (7, 7, 2, 1)
    maps = tf1.get_collection(slim.ATTENTION_MAPS)
    assert [m.name for m in maps] == [
        'cbam_0/SpatialAttention/attention_map:0',
        'cbam_0_1/SpatialAttention/attention_map:0',
        'cbam_1/SpatialAttention/attention_map:0']
    assert maps[0].shape.as_list() == [None, 7, 7, 1]


@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
def test_spatial_attention_map_in_collection_matches_reference(graph, data_format):
    x = cases.placeholder(SHAPE, data_format, tf.float64)
    slim.convolutional_block_attention_module(x, data_format=data_format,
                                              reduction_ratio=4)
    (attention_map,) = tf1.get_collection(slim.ATTENTION_MAPS)
    assert attention_map.op.name == 'CBAM/SpatialAttention/attention_map'
    value = _random_input()
    with tf1.Session() as sess:
        w = cases.set_random_weights(sess, tf1.global_variables(), 'CBAM')
        out = sess.run(attention_map, {x: cases.to_layout(value, data_format)})
    after_channel = ref.channel_attention(value, w, 'ChannelAttention/')
    expected = ref.spatial_map(after_channel, w, 'SpatialAttention/')
    np.testing.assert_allclose(cases.from_layout(out, data_format), expected,
                               rtol=1e-6, atol=1e-10)


def test_cbam_ignores_arg_scope_on_its_parts(graph):
    x = cases.placeholder(SHAPE)
    with slim.arg_scope([slim.channel_attention], reduction_ratio=1,
                        activation_fn=tf.nn.tanh, weights_regularizer=tf.reduce_sum):
        with slim.arg_scope([slim.spatial_attention], kernel_size=3,
                            zero_init_last=False):
            slim.convolutional_block_attention_module(x)
    shapes = cases.relative_shapes(tf1.global_variables(), 'CBAM')
    assert shapes == cases.cbam_variables(C)
    assert tf1.get_collection(tf1.GraphKeys.REGULARIZATION_LOSSES) == []


def test_spatial_gate_initial_state_is_official(graph):
    """BN gamma 0: the map starts at sigmoid(0) = 0.5 everywhere."""
    x = cases.placeholder(SHAPE)
    y = slim.spatial_attention(x)
    value = _random_input()
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        out, gamma, weights = sess.run(
            [y, _var('SpatialAttention/BatchNorm/gamma'),
             _var('SpatialAttention/conv/weights')], {x: value})
    np.testing.assert_allclose(out, 0.5 * value, rtol=1e-6)
    assert gamma.tolist() == [0.0]
    assert np.abs(weights).max() > 0  # He-normal, not zeros


# ------------------------------------------------------------ global context
@pytest.mark.parametrize('pooling', ['attention', 'avg'])
@pytest.mark.parametrize('fusion', ['add', 'mul', 'both'])
@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
def test_global_context_variants_match_reference(graph, pooling, fusion, data_format):
    x = cases.placeholder(SHAPE, data_format, tf.float64)
    y = slim.global_context(x, reduction_ratio=4, pooling=pooling, fusion=fusion,
                            data_format=data_format)
    fusions = {'add': ('channel_add',), 'mul': ('channel_mul',),
               'both': ('channel_mul', 'channel_add')}[fusion]
    variables = tf1.global_variables()
    assert (cases.relative_shapes(variables, 'GlobalContext')
            == cases.gc_variables(C, 4, pooling, fusions))
    value = _random_input(1)
    with tf1.Session() as sess:
        w = cases.set_random_weights(sess, variables, 'GlobalContext')
        out = sess.run(y, {x: cases.to_layout(value, data_format)})
    np.testing.assert_allclose(cases.from_layout(out, data_format),
                               ref.global_context(value, w, pooling, fusion),
                               rtol=1e-6, atol=1e-10)


def test_global_context_starts_as_identity(graph):
    x = cases.placeholder(SHAPE)
    y = slim.global_context(x)
    value = _random_input().astype(np.float32)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(y, {x: value}), value)
        mask = sess.run(_var('GlobalContext/conv_mask/weights'))
    assert np.abs(mask).max() > 0


def test_global_context_single_argument_call(graph):
    y = slim.global_context(cases.placeholder((1, 4, 4, 64)))
    assert y.shape.as_list() == [1, 4, 4, 64]
    assert cases.count_params(tf1.trainable_variables()) == cases.gc_params(64)


# ------------------------------------------------------------------- ECA
def test_eca_adaptive_kernel_size_paper_eq12():
    assert [adaptive_kernel_size(c) for c in (64, 256, 512, 1024, 2048)] == [3, 5, 5, 5, 7]
    assert adaptive_kernel_size(1) == 1


@pytest.mark.parametrize('kernel_size', [1, 5, 9])
def test_eca_explicit_kernel_size_matches_reference(graph, kernel_size):
    x = cases.placeholder(SHAPE, dtype=tf.float64)
    y = slim.efficient_channel_attention(x, kernel_size=kernel_size)
    value = _random_input(2)
    with tf1.Session() as sess:
        w = cases.set_random_weights(sess, tf1.global_variables(), 'ECA')
        out = sess.run(y, {x: value})
    assert w['conv/weights'].shape == (kernel_size, 1, 1)
    np.testing.assert_allclose(out, ref.eca(value, w), rtol=1e-6, atol=1e-10)


# -------------------------------------------------------------- non-local
@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
@pytest.mark.parametrize('shape', [(2, 4, 6, C), (1, 5, 3, C)])
def test_non_local_subsample_matches_reference(graph, data_format, shape):
    x = cases.placeholder((None, None, None, C), data_format, tf.float64)
    y = slim.non_local_block(x, subsample=True, data_format=data_format)
    value = _random_input(3, shape)
    with tf1.Session() as sess:
        w = cases.set_random_weights(sess, tf1.global_variables(), 'NonLocal')
        out = sess.run(y, {x: cases.to_layout(value, data_format)})
    np.testing.assert_allclose(cases.from_layout(out, data_format),
                               ref.non_local_block(value, w, subsample=True),
                               rtol=1e-6, atol=1e-10)


def test_non_local_params_at_1024_channels(graph):
    slim.non_local_block(cases.placeholder((None, None, None, 1024)))
    assert cases.count_params(tf1.trainable_variables()) == 2101760


def test_non_local_starts_as_identity(graph):
    x = cases.placeholder(SHAPE)
    y = slim.non_local_block(x)
    value = _random_input().astype(np.float32)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(y, {x: value}), value)


# ------------------------------------------------------- half precision
@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
@pytest.mark.parametrize('dtype,tol', [(tf.float16, 2e-2), (tf.bfloat16, 1e-1)])
def test_half_precision_close_to_reference(graph, case, dtype, tol):
    x = cases.placeholder(SHAPE, dtype=dtype)
    y = case.fn(x)
    value = _random_input(4)
    with tf1.Session() as sess:
        w = cases.set_random_weights(sess, tf1.global_variables(), case.scope)
        out = sess.run(y, {x: value.astype(dtype.as_numpy_dtype)})
    x_rounded = value.astype(dtype.as_numpy_dtype).astype(np.float64)
    np.testing.assert_allclose(out.astype(np.float64),
                               case.reference(x_rounded, w, True),
                               rtol=tol, atol=tol)


# ------------------------------------------------------------ bad input
def _ops(graph):
    return len(graph.get_operations())


BAD_COMMON = [
    ('rank', lambda: cases.placeholder((2, 5, C))[..., 0], ValueError, 'rank 4'),
    ('channels', lambda: tf1.placeholder(tf.float32, [None, 5, 5, None]),
     ValueError, 'known number of channels'),
    ('dtype', lambda: tf1.placeholder(tf.int32, [None, 5, 5, C]),
     TypeError, 'floating point'),
]


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
@pytest.mark.parametrize('what,make,error,message', BAD_COMMON,
                         ids=[b[0] for b in BAD_COMMON])
def test_bad_inputs_raise_before_any_op(graph, case, what, make, error, message):
    x = make()
    n = _ops(graph)
    with pytest.raises(error, match=message):
        case.fn(x)
    assert _ops(graph) == n
    assert tf1.global_variables() == []


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_bad_data_format(graph, case):
    x = cases.placeholder(SHAPE)
    n = _ops(graph)
    with pytest.raises(ValueError, match=r"data_format must be 'NHWC' or 'NCHW', got 'NCWH'"):
        case.fn(x, data_format='NCWH')
    assert _ops(graph) == n


RATIO_FNS = [slim.squeeze_and_excitation, slim.channel_attention,
             slim.convolutional_block_attention_module, slim.global_context,
             slim.non_local_block]
BAD_RATIOS = [
    ({'reduction_ratio': 0}, ValueError, 'reduction_ratio must be a positive number, got 0'),
    ({'reduction_ratio': -4}, ValueError, 'reduction_ratio must be a positive number, got -4'),
    ({'inner_units_ratio': 0.0}, ValueError, 'inner_units_ratio must be a positive number, got 0.0'),
    ({'reduction_ratio': '16'}, TypeError, "reduction_ratio must be a positive number, got '16'"),
    ({'reduction_ratio': 8, 'inner_units_ratio': 0.5}, ValueError,
     'give reduction_ratio or inner_units_ratio, not both'),
]


@pytest.mark.parametrize('fn', RATIO_FNS, ids=lambda f: f.__name__)
@pytest.mark.parametrize('kwargs,error,message', BAD_RATIOS)
def test_bad_ratios(graph, fn, kwargs, error, message):
    x = cases.placeholder(SHAPE)
    n = _ops(graph)
    with pytest.raises(error, match=message):
        fn(x, **kwargs)
    assert _ops(graph) == n


@pytest.mark.parametrize('fn', [slim.spatial_attention,
                                slim.convolutional_block_attention_module,
                                slim.efficient_channel_attention],
                         ids=lambda f: f.__name__)
@pytest.mark.parametrize('kernel_size,error', [(4, ValueError), (0, ValueError),
                                               (-3, ValueError), (3.0, TypeError)])
def test_bad_kernel_size(graph, fn, kernel_size, error):
    x = cases.placeholder(SHAPE)
    n = _ops(graph)
    with pytest.raises(error, match='kernel_size must be a positive odd integer, got %r'
                       % kernel_size):
        fn(x, kernel_size=kernel_size)
    assert _ops(graph) == n


@pytest.mark.parametrize('kwargs,message', [
    ({'pooling': 'max'}, "pooling must be one of 'attention', 'avg', got 'max'"),
    ({'fusion': 'concat'}, "fusion must be one of 'add', 'mul', 'both', got 'concat'"),
])
def test_global_context_bad_modes(graph, kwargs, message):
    x = cases.placeholder(SHAPE)
    n = _ops(graph)
    with pytest.raises(ValueError, match=message):
        slim.global_context(x, **kwargs)
    assert _ops(graph) == n


@pytest.mark.parametrize('kwargs,error,message', [
    ({'index': -1}, ValueError, 'index must be a non-negative int, got -1'),
    ({'index': '0'}, TypeError, "index must be a non-negative int, got '0'"),
    ({'index': 0, 'scope': 'att'}, ValueError, 'give index or scope, not both'),
])
def test_cbam_bad_index(graph, kwargs, error, message):
    x = cases.placeholder(SHAPE)
    n = _ops(graph)
    with pytest.raises(error, match=message):
        slim.convolutional_block_attention_module(x, **kwargs)
    assert _ops(graph) == n


@pytest.mark.parametrize('fn', [slim.spatial_attention, slim.non_local_block],
                         ids=lambda f: f.__name__)
def test_bad_is_training(graph, fn):
    x = cases.placeholder(SHAPE)
    with pytest.raises(TypeError, match='is_training must be a Python bool'):
        fn(x, is_training='yes')


# --------------------------------------------------------------- registry
@pytest.mark.parametrize('name,fn', [
    ('se', slim.squeeze_and_excitation),
    ('cbam', slim.convolutional_block_attention_module),
    ('sam', slim.spatial_attention), ('gc', slim.global_context),
    ('eca', slim.efficient_channel_attention), ('nl', slim.non_local_block)])
def test_registry(name, fn):
    assert slim.get_attention_fn(name) is fn


@pytest.mark.parametrize('name', ['SE', 'bam', None, ''])
def test_registry_unknown_name(name):
    with pytest.raises(ValueError, match=r"unknown attention name %s; valid names: "
                       r"'se', 'cbam', 'sam', 'gc', 'eca', 'nl'" % repr(name)):
        slim.get_attention_fn(name)


def test_public_names():
    import slim_attention.attention as attention
    assert set(attention.__all__) == {
        'ATTENTION_MAPS', 'channel_attention', 'convolutional_block_attention_module',
        'efficient_channel_attention', 'get_attention_fn', 'global_context',
        'non_local_block', 'spatial_attention', 'squeeze_and_excitation'}
    assert slim.ATTENTION_MAPS == 'attention_maps'


# ------------------------------------------------------------- signature
SLIM_TAIL = ['weights_initializer', 'weights_regularizer', 'biases_initializer',
             'biases_regularizer', 'reuse', 'variables_collections',
             'outputs_collections', 'trainable', 'data_format', 'scope']


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_slim_signature(case):
    import inspect
    params = list(inspect.signature(case.fn).parameters.values())
    assert params[0].name == 'inputs'
    assert [p.name for p in params[-len(SLIM_TAIL):]] == SLIM_TAIL
    assert all(p.default is not inspect.Parameter.empty for p in params[1:])
    assert slim.has_arg_scope(case.fn)
    assert case.fn.__doc__ and 'Raises:' in case.fn.__doc__


# ------------------------------------------------------ official init
@pytest.mark.parametrize('build,name,check', [
    # PyTorch default Linear/Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    (lambda x: slim.squeeze_and_excitation(x, reduction_ratio=1),
     'SqueezeExcitation/fc1/weights',
     lambda w: abs(np.abs(w).max() - 1 / 16) < 1e-3 and abs(w.std() - 1 / np.sqrt(3 * 256)) < 2e-3),
    (lambda x: slim.efficient_channel_attention(x, kernel_size=9), 'ECA/conv/weights',
     lambda w: np.abs(w).max() <= 1 / 3 and np.abs(w).max() > 0),
    # non-local: N(0, 0.01)
    (slim.non_local_block, 'NonLocal/theta/weights', lambda w: abs(w.std() - 0.01) < 1e-3),
    # GC conv_mask: He-normal fan_in, std sqrt(2 / C)
    (slim.global_context, 'GlobalContext/conv_mask/weights',
     lambda w: abs(w.std() - np.sqrt(2 / 256)) < 0.03),
    (slim.global_context, 'GlobalContext/channel_add/conv2/weights', lambda w: not w.any()),
    (slim.non_local_block, 'NonLocal/BatchNorm/gamma', lambda w: not w.any()),
    (slim.non_local_block, 'NonLocal/theta/biases', lambda w: not w.any()),
])
def test_official_initialisation(graph, build, name, check):
    tf1.set_random_seed(0)
    build(cases.placeholder((None, None, None, 256)))
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        assert check(sess.run(_var(name)))
