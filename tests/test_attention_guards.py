"""Refused calls leave nothing behind: every check runs before the first op.

For each block and each input it refuses (a scope clash, reuse=True before
the variables exist, reuse without a scope, a reused variable of another
shape, 0 channels, infinite or widening ratios, a bad reuse or scope value)
the graph's op count, its variables and its variable-scope counts are the
same after the refused call as before, and the message names the argument,
the value and what was expected.
"""
import math

import pytest
import tensorflow as tf

import attention_cases as cases
import slim_attention as slim
from attention_cases import CASES, CASE_IDS
from slim_attention.attention import _args

tf1 = tf.compat.v1
C = 16
SHAPE = (2, 5, 7, C)


def _state(graph):
    """What a refused call must not change: ops, variables and the scope
    counts (which decide the next default scope name, CBAM_1, ...)."""
    from tensorflow.python.ops import variable_scope as vs  # pylint: disable=g-direct-tensorflow-import
    counts = dict(vs.get_variable_scope_store().variable_scopes_count)
    return (len(graph.get_operations()), [v.name for v in tf1.global_variables()],
            counts)


def _refused(graph, call, error, message):
    before = _state(graph)
    with pytest.raises(error, match=message):
        call()
    assert _state(graph) == before


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_scope_clash_is_refused_before_any_op(graph, case):
    x = cases.placeholder(SHAPE)
    case.fn(x, scope='blk')
    _refused(graph, lambda: case.fn(x, scope='blk'), ValueError,
             r"scope 'blk' already holds this block's variables \(blk/.*\) and "
             r"reuse is not set; give reuse=True or tf.compat.v1.AUTO_REUSE")
    # A VariableScope object, and inside an outer scope, resolve the same way.
    with tf1.variable_scope('blk') as sc:
        pass
    _refused(graph, lambda: case.fn(x, scope=sc), ValueError,
             "scope 'blk' already holds")
    with tf1.variable_scope('outer'):
        case.fn(x, scope='blk')
        _refused(graph, lambda: case.fn(x, scope='blk'), ValueError,
                 "scope 'outer/blk' already holds")


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_reuse_before_the_variables_exist_is_refused_before_any_op(graph, case):
    x = cases.placeholder(SHAPE)
    _refused(graph, lambda: case.fn(x, scope='fresh', reuse=True), ValueError,
             r"reuse=True but scope 'fresh' does not hold this block's variable "
             r"fresh/\S+ \((\d+) of \1 missing\)")
    # Inherited reuse resolves the default scope as TensorFlow will: a
    # reopened outer scope finds its block again (and shares its variables),
    # a second default-named block in it (CBAM_1, ...) has none to reuse.
    with tf1.variable_scope('outer'):
        case.fn(x)
    n = len(tf1.global_variables())
    with tf1.variable_scope('outer', reuse=True):
        case.fn(x)
        assert len(tf1.global_variables()) == n
        _refused(graph, lambda: case.fn(x), ValueError,
                 "reuse=True but scope 'outer/%s_1' does not hold" % case.scope)
    _refused(graph, lambda: case.fn(x, reuse=True), ValueError,
             r"reuse=True needs the scope of the variables to reuse, got "
             r"scope=None \(the default scope '%s'" % case.scope)
    _refused(graph, lambda: case.fn(x, reuse=tf1.AUTO_REUSE), ValueError,
             'reuse=.*AUTO_REUSE.* needs the scope')


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_reuse_with_other_shapes_is_refused_before_any_op(graph, case):
    """Other channels, or arguments that change a variable's shape."""
    case.fn(cases.placeholder(SHAPE), scope='blk')
    x = cases.placeholder(SHAPE, name='x2')
    x8 = cases.placeholder((2, 5, 7, 8), name='x8')
    calls = [lambda r: case.fn(x, scope='blk', reuse=r, **case.scoped_kwargs)]
    if case.name not in ('sam', 'eca'):  # their variables do not depend on C
        calls.append(lambda r: case.fn(x8, scope='blk', reuse=r))
    for call, reuse in [(c, r) for c in calls for r in (True, tf1.AUTO_REUSE)]:
        _refused(graph, lambda: call(reuse), ValueError,
                 r'reuse=.*: variable blk/\S+ has shape \(.*\) but this call '
                 r'needs \(.*\)')


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
def test_reuse_with_another_dtype_is_refused_before_any_op(graph, case):
    case.fn(cases.placeholder(SHAPE), scope='blk')
    x64 = cases.placeholder(SHAPE, dtype=tf.float64, name='x64')
    _refused(graph, lambda: case.fn(x64, scope='blk', reuse=True), ValueError,
             r'reuse=True: variable blk/\S+ has dtype float32 but this call needs '
             r'float64')


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
@pytest.mark.parametrize('data_format', ['NHWC', 'NCHW'])
def test_zero_channels_are_refused_before_any_op(graph, case, data_format):
    x = cases.placeholder((2, 5, 7, 0), data_format)
    _refused(graph, lambda: case.fn(x, data_format=data_format), ValueError,
             r'inputs must have at least 1 channel \(axis %d in %s\), got shape'
             % (3 if data_format == 'NHWC' else 1, data_format))


@pytest.mark.parametrize('case', CASES, ids=CASE_IDS)
@pytest.mark.parametrize('reuse,scope,error,message', [
    ('yes', 'blk', ValueError,
     "reuse must be True, False, None or tf.compat.v1.AUTO_REUSE, got 'yes'"),
    (None, 5, TypeError,
     'scope must be None, a string or a tf.compat.v1.VariableScope, got 5 '
     r'\(type int\)'),
])
def test_bad_reuse_or_scope_values(graph, case, reuse, scope, error, message):
    x = cases.placeholder(SHAPE)
    _refused(graph, lambda: case.fn(x, reuse=reuse, scope=scope), error, message)


RATIO_FNS = [slim.squeeze_and_excitation, slim.channel_attention,
             slim.convolutional_block_attention_module, slim.global_context,
             slim.non_local_block]


@pytest.mark.parametrize('fn', RATIO_FNS, ids=lambda f: f.__name__)
@pytest.mark.parametrize('kwargs,message', [
    ({'reduction_ratio': math.inf}, 'reduction_ratio must be a finite number, got inf'),
    ({'reduction_ratio': math.nan}, 'reduction_ratio must be a positive number, got nan'),
    ({'reduction_ratio': 0.5}, r'reduction_ratio must be at least 1 \(the hidden '
                               r'width C // reduction_ratio may not exceed the C '
                               r'channels it reduces\), got 0.5'),
    ({'reduction_ratio': 1e-300}, 'reduction_ratio must be at least 1 .*got 1e-300'),
    ({'inner_units_ratio': 2}, r'inner_units_ratio must be at most 1 \(the hidden '
                               r'width int\(C \* inner_units_ratio\) may not exceed '
                               r'the C channels it reduces\), got 2'),
    ({'inner_units_ratio': math.inf}, 'inner_units_ratio must be at most 1 .*got inf'),
])
def test_infinite_or_widening_ratios_are_refused_before_any_op(graph, fn, kwargs,
                                                                message):
    x = cases.placeholder(SHAPE)
    _refused(graph, lambda: fn(x, **kwargs), ValueError, message)


@pytest.mark.parametrize('fn', RATIO_FNS, ids=lambda f: f.__name__)
def test_extreme_but_sane_ratios_still_work(graph, fn):
    """r = 1 (no reduction), inner_units_ratio = 1, and a ratio larger than C
    (a width of 1) are still accepted."""
    x = cases.placeholder(SHAPE)
    fn(x, reduction_ratio=1)
    fn(x, inner_units_ratio=1.0)
    fn(x, reduction_ratio=10 ** 400)
    fn(x, inner_units_ratio=1e-300)


def test_calling_twice_without_a_scope_still_makes_a_second_scope(graph):
    x = cases.placeholder(SHAPE)
    slim.convolutional_block_attention_module(x)
    slim.convolutional_block_attention_module(x)
    with tf1.variable_scope('outer', reuse=tf1.AUTO_REUSE):
        slim.convolutional_block_attention_module(x)
        slim.convolutional_block_attention_module(x)
    tops = {v.op.name.rsplit('/', 3)[0] for v in tf1.global_variables()
            if v.op.name.endswith('ChannelAttention/fc1/weights')}
    assert tops == {'CBAM', 'CBAM_1', 'outer/CBAM', 'outer/CBAM_1'}


# ------------------------------------------ the checked list is what is made
VARIANTS = [
    (case, kwargs) for case in CASES for kwargs in
    [{}, {'biases_initializer': None}, {'biases_initializer': tf1.zeros_initializer()},
     {'data_format': 'NCHW'}]
] + [
    (CASES[CASE_IDS.index('gc')], {'pooling': p, 'fusion': f})
    for p in ('attention', 'avg') for f in ('add', 'mul', 'both')
] + [
    (CASES[CASE_IDS.index('cbam')], {'index': 3, 'kernel_size': 3}),
    (CASES[CASE_IDS.index('eca')], {'kernel_size': 5}),
]


@pytest.mark.parametrize('case,kwargs', VARIANTS,
                         ids=['%s-%d' % (c.name, i) for i, (c, _) in enumerate(VARIANTS)])
@pytest.mark.parametrize('dtype', [tf.float32, tf.float16])
def test_checked_variables_are_exactly_the_created_ones(graph, monkeypatch, case,
                                                        kwargs, dtype):
    """The list each block checks (names, shapes, dtypes, in creation order)
    is the list it then creates, so the check cannot drift from the block."""
    checked = []
    real = _args.check_scope

    def record(scope, default_name, reuse, variables):
        checked.append(list(variables))
        return real(scope, default_name, reuse, variables)

    monkeypatch.setattr(_args, 'check_scope', record)
    x = cases.placeholder(SHAPE, kwargs.get('data_format', 'NHWC'), dtype)
    case.fn(x, **kwargs)
    top = tf1.global_variables()[0].op.name.split('/')[0]
    created = [(v.op.name[len(top) + 1:], v.shape.as_list(), v.dtype.base_dtype)
               for v in tf1.global_variables()]
    assert [(n, list(s), tf.as_dtype(d)) for n, s, d in checked[0]] == created
