"""The argument checks, layout and dtype policy of the attention blocks
(slim_attention.attention._args), pinned directly, independently of any block."""
import numpy as np
import pytest
import tensorflow as tf

from slim_attention.attention import _args

tf1 = tf.compat.v1


@pytest.mark.parametrize('dtype', [tf.float16, tf.bfloat16, tf.float32, tf.float64])
def test_cast_in_uses_compute_dtype(graph, dtype):
    x = tf1.placeholder(dtype, [1, 2, 2, 3])
    cdtype = _args.compute_dtype(dtype)
    n = len(graph.get_operations())
    inputs, compute = _args.cast_in(x, dtype, cdtype)
    assert inputs is x
    assert compute.dtype == (tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype)
    if cdtype == dtype:
        assert compute is x and len(graph.get_operations()) == n  # no cast op


def test_cast_in_converts_arrays(graph):
    inputs, compute = _args.cast_in(np.ones((1, 2, 2, 3)), tf.float64, tf.float64)
    assert tf.is_tensor(inputs) and inputs.dtype == tf.float64 and compute is inputs


@pytest.mark.parametrize('data_format,shape,channels', [
    ('NHWC', [None, 5, 6, 7], 7), ('NCHW', [None, 7, 5, 6], 7)])
def test_check_inputs_returns_dtype_and_channels(graph, data_format, shape, channels):
    x = tf1.placeholder(tf.float16, shape)
    assert _args.check_inputs(x, data_format) == (tf.float16, channels)


@pytest.mark.parametrize('shape,dtype,error,message', [
    ([2, 5, 7], tf.float32, ValueError, r'inputs must have rank 4 \(NHWC\), got shape'),
    ([2, 5, 5, None], tf.float32, ValueError, 'known number of channels'),
    ([2, 5, 5, 3], tf.int32, TypeError,
     'inputs must be a floating point tensor, got dtype int32'),
])
def test_check_inputs_errors(graph, shape, dtype, error, message):
    with pytest.raises(error, match=message):
        _args.check_inputs(tf1.placeholder(dtype, shape), 'NHWC')


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



def test_static_dim_is_an_int_or_none_in_both_behaviours(graph):
    # Under disable_v2_behavior() tensor.shape[i] is a Dimension; the blocks
    # read static sizes through static_dim only.
    x = tf1.placeholder(tf.float32, [None, 5, None, 3])
    dims = [_args.static_dim(x, axis) for axis in range(4)]
    assert dims == [None, 5, None, 3]
    assert [type(d) for d in dims] == [type(None), int, type(None), int]
    assert _args.static_dim(x.shape, -1) == 3
    assert _args.static_dim(np.zeros((2, 7)), 1) == 7
    assert _args.static_dim(tf1.placeholder(tf.float32, None), 0) is None
