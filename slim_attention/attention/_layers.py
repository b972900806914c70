"""The weighted layers of the attention blocks and their variables.

One place for: the official code's default initializers, variable creation
(:func:`variable`, bundled per block in :class:`LayerArgs`), the weighted
layers (:func:`weighted_layer`: weights and an optional bias; dense, 1x1
convolution, the SE/CBAM MLP), the lists of the variables they will create
(for :func:`slim_attention.attention._args.check_scope`), the layout
transposes and the channel-gate epilogue.

The blocks are written with ``model_variable`` and ``tf.nn`` ops rather than
``slim.conv2d``/``slim.fully_connected``/``slim.batch_norm`` so that a user's
``arg_scope`` on those layers (normalizer_fn, activation_fn, regularizers...)
cannot change the blocks' math.
"""
import collections

import tensorflow as tf
from tf_slim.layers import utils as slim_utils
from tf_slim.ops import variables as slim_variables

from slim_attention.attention import _args

tf1 = tf.compat.v1


# --------------------------------------------------------------------------
# Initializers of the official code
# --------------------------------------------------------------------------
def torch_default_initializer():
    """PyTorch's default Linear/Conv init, ``kaiming_uniform(a=sqrt(5))``: U(+-1/sqrt(fan_in))."""
    return tf1.variance_scaling_initializer(
        scale=1.0 / 3.0, mode='fan_in', distribution='uniform')


def he_normal_initializer(mode):
    """``kaiming_normal(mode=mode)`` for a relu gain: N(0, 2/fan)."""
    return tf1.variance_scaling_initializer(
        scale=2.0, mode=mode, distribution='untruncated_normal')


# --------------------------------------------------------------------------
# Variables and weighted layers
# --------------------------------------------------------------------------
def variable(name, shape, dtype, initializer, regularizer, trainable,
             variables_collections, collection_name):
    """A ``model_variable`` in the collections slim would give it."""
    return slim_variables.model_variable(
        name,
        shape=shape,
        dtype=dtype,
        initializer=initializer,
        regularizer=regularizer,
        trainable=trainable,
        collections=slim_utils.get_variable_collections(
            variables_collections, collection_name))


LayerArgs = collections.namedtuple('LayerArgs', [
    'dtype', 'weights_initializer', 'weights_regularizer', 'biases_initializer',
    'biases_regularizer', 'trainable', 'variables_collections'])
LayerArgs.__doc__ = """How a block's weighted layers make their variables.

The block's own arguments, bundled once per block so that every layer of it
gets the same ones (``args._replace(...)`` for a layer that differs).
``dtype`` is the compute dtype (:func:`layer_args` sets it);
``biases_initializer=None`` means no bias (as in slim).
"""


def layer_args(input_dtype, weights_initializer, weights_regularizer,
               biases_initializer, biases_regularizer, trainable,
               variables_collections, default_weights_initializer=None):
    """The :class:`LayerArgs` of a block on inputs of ``input_dtype``.

    The prologue every block shares: the variables get the compute dtype
    (:func:`slim_attention.attention._args.compute_dtype`), and
    ``weights_initializer=None`` means ``default_weights_initializer`` (the
    official code's init for the block's layers).
    """
    if weights_initializer is None:
        weights_initializer = default_weights_initializer
    return LayerArgs(_args.compute_dtype(input_dtype), weights_initializer,
                     weights_regularizer, biases_initializer,
                     biases_regularizer, trainable, variables_collections)


def layer_variables(scope, weights_shape, args):
    """The variables :func:`weighted_layer` creates: ``[(name, shape, dtype)]``
    of ``scope/weights`` and, with a biases_initializer, ``scope/biases``."""
    out = [(scope + '/weights', list(weights_shape), args.dtype)]
    if args.biases_initializer is not None:
        out.append((scope + '/biases', list(weights_shape[-1:]), args.dtype))
    return out


def mlp_variables(channels, units, args, prefix=''):
    """The variables :func:`mlp` creates on C = ``channels`` (under ``prefix``)."""
    return (layer_variables(prefix + 'fc1', [channels, units], args)
            + layer_variables(prefix + 'fc2', [units, channels], args))


def weighted_layer(x, op, weights_shape, args, scope, data_format=None):
    """``op(x, weights)``, plus a bias, with slim's names ``scope/weights``, ``scope/biases``.

    The one place the blocks create a weights variable and its optional bias
    (shape ``[weights_shape[-1]]``, added over ``data_format``'s channel axis;
    None means the last axis).

    Args:
      x: the layer's input.
      op: ``op(x, weights)`` computes the layer without its bias.
      weights_shape: shape of ``scope/weights``; its last entry is the output width.
      args: a :class:`LayerArgs`.
      scope: the layer's variable scope (a fixed inner name, e.g. 'fc1').
      data_format: passed to ``tf.nn.bias_add``.

    Returns:
      The layer's output.
    """
    with tf1.variable_scope(scope):
        weights = variable('weights', weights_shape, args.dtype,
                           args.weights_initializer, args.weights_regularizer,
                           args.trainable, args.variables_collections,
                           'weights')
        out = op(x, weights)
        if args.biases_initializer is not None:
            biases = variable('biases', weights_shape[-1:], args.dtype,
                              args.biases_initializer, args.biases_regularizer,
                              args.trainable, args.variables_collections,
                              'biases')
            out = tf.nn.bias_add(out, biases, data_format=data_format)
    return out


def dense(x, units, args, scope):
    """``x @ W + b`` on [N, Cin]: variables ``scope/weights`` [Cin, units], ``scope/biases``."""
    return weighted_layer(x, tf.matmul, [_args.static_dim(x, -1), units], args, scope)


def mlp(x, units, activation_fn, args):
    """SE's excitation and CBAM's shared channel MLP: ``fc2(activation_fn(fc1(x)))``.

    On [B, C]: ``fc1`` (C -> units, ``fc1/weights``, ``fc1/biases``), then
    ``fc2`` (units -> C); returns the [B, C] logits (no gate).
    """
    hidden = activation_fn(dense(x, units, args, 'fc1'))  # [B, P]
    return dense(hidden, _args.static_dim(x, -1), args, 'fc2')  # [B, C]


def pointwise(x, weights, data_format):
    """1x1 convolution; ``weights`` is [1, 1, Cin, Cout].

    NHWC is ``tf.nn.conv2d`` (oneDNN's 1x1 convolution, faster on CPU than
    TF's Einsum kernel and its gradient Einsums: see docs/benchmarks.md). NCHW
    is a batched matmul over [N, Cin, HW] (CPU has no NCHW convolution kernel).
    """
    if data_format == 'NHWC':
        return tf.nn.conv2d(x, weights, strides=1, padding='VALID')
    cin, cout = _args.static_dim(weights, 2), _args.static_dim(weights, 3)
    shape = tf.shape(x)
    kernel = tf.reshape(weights, [cin, cout])
    flat = tf.reshape(x, [shape[0], cin, -1])  # [N, Cin, HW]
    out = tf.matmul(kernel, flat, transpose_a=True)  # [N, Cout, HW]
    return tf.reshape(out, [shape[0], cout, shape[2], shape[3]])  # [N, Cout, H, W]


def conv1x1(x, units, args, data_format, scope):
    """1x1 convolution with slim.conv2d's variables (``weights`` [1,1,Cin,Cout], ``biases``)."""
    cin = _args.static_dim(x, _args.channel_axis(data_format))
    return weighted_layer(
        x, lambda net, weights: pointwise(net, weights, data_format),
        [1, 1, cin, units], args, scope, data_format)


def mlp_gate_args(inputs, reduction_ratio, inner_units_ratio, activation_fn,
                  gate_fn, weights_initializer, weights_regularizer,
                  biases_initializer, biases_regularizer, trainable,
                  variables_collections, data_format):
    """Checks and resolves the arguments of an MLP channel gate (SE, CBAM's channel gate).

    In the blocks' order: data_format, the ratios (r = 16 when neither is
    given), activation_fn and gate_fn, then the inputs. The MLP weights
    default to PyTorch's default Linear init, as in the official code.

    Returns:
      ``(dtype, channels, units, args)``: the input dtype, C, the hidden width
      P and the :class:`LayerArgs` of ``fc1`` and ``fc2``.

    Raises:
      ValueError, TypeError: as the ``check_*`` functions of
        :mod:`slim_attention.attention._args`.
    """
    _args.check_data_format(data_format)
    reduction_ratio, inner_units_ratio = _args.check_ratios(
        reduction_ratio, inner_units_ratio, 16)
    _args.check_callable('activation_fn', activation_fn)
    _args.check_callable('gate_fn', gate_fn)
    dtype, channels = _args.check_inputs(inputs, data_format)
    units = _args.hidden_units(channels, reduction_ratio, inner_units_ratio)
    args = layer_args(dtype, weights_initializer, weights_regularizer,
                      biases_initializer, biases_regularizer, trainable,
                      variables_collections, torch_default_initializer())
    return dtype, channels, units, args


# --------------------------------------------------------------------------
# Layout transposes, the channel-gate epilogue, outputs
# --------------------------------------------------------------------------
def to_nhwc(x, data_format):
    """NCHW -> NHWC transpose (identity for NHWC)."""
    if data_format == 'NCHW':
        return tf.transpose(x, [0, 2, 3, 1])  # [N, C, H, W] -> [N, H, W, C]
    return x


def from_nhwc(x, data_format):
    """NHWC -> NCHW transpose (identity for NHWC)."""
    if data_format == 'NCHW':
        return tf.transpose(x, [0, 3, 1, 2])  # [N, H, W, C] -> [N, C, H, W]
    return x


def scale_channels(inputs, gate, channels, data_format):
    """``inputs * gate`` for a per-image channel gate of C values ([N, C] or [N, C, 1]).

    The gate (in the compute dtype) is cast to the input dtype and reshaped to
    broadcast over H and W.
    """
    gate = tf.reshape(tf.cast(gate, inputs.dtype),
                      _args.gate_shape(channels, data_format))  # [N,1,1,C] or [N,C,1,1]
    return inputs * gate


def collect(outputs_collections, name, outputs):
    """slim's ``collect_named_outputs``."""
    return slim_utils.collect_named_outputs(outputs_collections, name, outputs)
