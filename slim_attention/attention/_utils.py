"""Private helpers shared by the attention blocks.

One place for: argument validation (ValueError/TypeError naming the argument,
the value and what was expected, raised before any op exists; that includes
the variable scope, checked against the variables the block will create by
:func:`check_scope`), data_format axes, the input contract and channel
count, the bottleneck width, the compute dtype policy (cast in, and the
channel-gate epilogue that casts back), the default initializers of the
official code, the weighted layers (weights and an optional bias, bundled per
block in :class:`LayerArgs`), the SE/CBAM MLP, and the small normalisation
layers (batch norm, layer norm) the blocks need.

The blocks are written with ``model_variable`` and ``tf.nn`` ops rather than
``slim.conv2d``/``slim.fully_connected``/``slim.batch_norm`` so that a user's
``arg_scope`` on those layers (normalizer_fn, activation_fn, regularizers...)
cannot change the blocks' math.
"""
import collections
import math
import numbers

import numpy as np
import tensorflow as tf
# variable_scope's own name resolution and variable store (check_scope).
from tensorflow.python.ops import variable_scope as _tf_vs  # pylint: disable=g-direct-tensorflow-import
from tf_slim.layers import utils as slim_utils
from tf_slim.ops import variables as slim_variables

tf1 = tf.compat.v1

#: Graph collection holding every spatial attention map (sigmoid output).
ATTENTION_MAPS = 'attention_maps'

DATA_FORMATS = ('NHWC', 'NCHW')
_HALF_DTYPES = (tf.float16, tf.bfloat16)


# --------------------------------------------------------------------------
# Validation (pure Python: creates no op)
# --------------------------------------------------------------------------
def check_data_format(data_format):
    """Returns ``data_format`` if it is 'NHWC' or 'NCHW', else raises ValueError."""
    if data_format not in DATA_FORMATS:
        raise ValueError(
            "data_format must be 'NHWC' or 'NCHW', got %r" % (data_format,))
    return data_format


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_number(name, value):
    """Raises unless ``value`` is a real number > 0 (bools are rejected)."""
    if not _is_number(value):
        raise TypeError('%s must be a positive number, got %r (type %s)'
                        % (name, value, type(value).__name__))
    if not value > 0:
        raise ValueError('%s must be a positive number, got %r' % (name, value))
    return value


def check_odd_kernel_size(value, name='kernel_size'):
    """Raises unless ``value`` is a positive odd integer (for symmetric 'SAME')."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError('%s must be a positive odd integer, got %r (type %s)'
                        % (name, value, type(value).__name__))
    if value <= 0 or value % 2 == 0:
        raise ValueError('%s must be a positive odd integer, got %r'
                         % (name, value))
    return int(value)


def check_choice(name, value, choices):
    """Raises ValueError unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError('%s must be one of %s, got %r'
                         % (name, ', '.join(repr(c) for c in choices), value))
    return value


def check_callable(name, value):
    """Raises TypeError unless ``value`` is callable."""
    if not callable(value):
        raise TypeError('%s must be callable, got %r' % (name, value))
    return value


def check_ratios(reduction_ratio, inner_units_ratio, default_reduction_ratio):
    """Validates the two forms of the bottleneck width; returns them resolved.

    Args:
      reduction_ratio: None or a positive number.
      inner_units_ratio: None or a positive number.
      default_reduction_ratio: used when both are None.

    Returns:
      ``(reduction_ratio, inner_units_ratio)`` with at most one not None.

    Raises:
      ValueError: both are given, one is not positive, reduction_ratio is
        infinite or below 1, or inner_units_ratio is above 1 (a bottleneck
        wider than its input: reduction_ratio=1e-6 would give a 256-channel
        SE block about 1.3e11 weights).
      TypeError: one is not a number.
    """
    if reduction_ratio is not None and inner_units_ratio is not None:
        raise ValueError(
            'give reduction_ratio or inner_units_ratio, not both: got '
            'reduction_ratio=%r and inner_units_ratio=%r'
            % (reduction_ratio, inner_units_ratio))
    if inner_units_ratio is not None:
        check_positive_number('inner_units_ratio', inner_units_ratio)
        if not inner_units_ratio <= 1:
            raise ValueError(
                'inner_units_ratio must be at most 1 (the hidden width '
                'int(C * inner_units_ratio) may not exceed the C channels it '
                'reduces), got %r' % (inner_units_ratio,))
        return None, inner_units_ratio
    if reduction_ratio is None:
        reduction_ratio = default_reduction_ratio
    check_positive_number('reduction_ratio', reduction_ratio)
    if reduction_ratio == math.inf:  # (nan is not positive; ints are finite)
        raise ValueError('reduction_ratio must be a finite number, got %r'
                         % (reduction_ratio,))
    if not reduction_ratio >= 1:
        raise ValueError(
            'reduction_ratio must be at least 1 (the hidden width C // '
            'reduction_ratio may not exceed the C channels it reduces), got %r'
            % (reduction_ratio,))
    return reduction_ratio, None


def static_shape(inputs):
    """The static shape of a tensor, variable, ``TensorShape`` or array-like,
    without creating ops."""
    if isinstance(inputs, tf.TensorShape):
        return inputs
    shape = getattr(inputs, 'shape', None)
    if shape is None:
        shape = np.shape(inputs)
    return tf.TensorShape(shape)


def static_dim(inputs, axis):
    """Entry ``axis`` of the static shape: an int, or None if unknown.

    The one way the blocks read a static dimension. Under
    ``tf.compat.v1.disable_v2_behavior()`` ``tensor.shape[i]`` is a
    ``Dimension`` (``Dimension(None) is not None``, comparisons with it give
    None), under TF2 behaviour an int or None; this is an int or None in both.
    """
    return tf.compat.dimension_value(static_shape(inputs)[axis])


def check_inputs(inputs, data_format):
    """The input contract of every block: floating point, rank 4, known channels (>= 1).

    Returns:
      ``(dtype, channels)``: the input dtype (:func:`check_dtype`) and the
      channel count C.

    Raises:
      TypeError: the dtype is not floating point.
      ValueError: the rank is not 4 or the channel dimension is unknown or 0.
    """
    dtype = check_dtype(inputs)
    shape = static_shape(inputs)
    if shape.rank != 4:
        raise ValueError(
            'inputs must have rank 4 (%s), got shape %s (rank %s)'
            % (data_format, shape, shape.rank))
    channels = static_dim(shape, channel_axis(data_format))
    if channels is None:
        raise ValueError(
            'inputs must have a known number of channels (axis %d in %s), '
            'got shape %s' % (channel_axis(data_format), data_format, shape))
    if channels < 1:
        raise ValueError(
            'inputs must have at least 1 channel (axis %d in %s), got shape %s'
            % (channel_axis(data_format), data_format, shape))
    return dtype, int(channels)


def check_dtype(inputs):
    """Raises TypeError unless the input dtype is floating point."""
    dtype = getattr(inputs, 'dtype', None)
    if dtype is None:
        # A Python list: tf.convert_to_tensor makes floats float32, ints int32.
        kind = np.asarray(inputs).dtype.kind
        if kind != 'f':
            raise TypeError('inputs must be floating point, got a Python '
                            'sequence of %s values' % np.asarray(inputs).dtype.name)
        return tf.float32
    dtype = tf.as_dtype(dtype)
    if not dtype.is_floating:
        raise TypeError('inputs must be a floating point tensor, got dtype %s'
                        % dtype.name)
    return dtype


_REUSE_VALUES = (True, False, None, tf1.AUTO_REUSE)


def check_reuse(reuse):
    """Raises ValueError unless ``reuse`` is True, False, None or AUTO_REUSE."""
    if not any(reuse is value for value in _REUSE_VALUES):
        raise ValueError('reuse must be True, False, None or '
                         'tf.compat.v1.AUTO_REUSE, got %r' % (reuse,))
    return reuse


def _scope_and_reuse(scope, default_name, reuse):
    """What ``tf1.variable_scope(scope, default_name, reuse=reuse)`` will open,
    worked out without opening it: ``(variable scope name, reuse, custom
    getter or partitioner in force)``.

    Follows TensorFlow's rules: a string extends the current scope and
    inherits its reuse; a ``VariableScope`` is absolute and keeps its own
    reuse unless ``reuse`` is given; no scope uniquifies ``default_name``
    (CBAM, CBAM_1, ...) the way entering it will, and inherits the current
    reuse.
    """
    if reuse is False:
        reuse = None  # variable_scope: False means "inherit", like None
    current = tf1.get_variable_scope()
    if isinstance(scope, tf1.VariableScope):
        name = scope.name
        reuse = reuse or scope.reuse
        special = scope.custom_getter is not None or scope.partitioner is not None
    else:
        if scope is None:
            if reuse:
                raise ValueError(
                    'reuse=%r needs the scope of the variables to reuse, got '
                    'scope=None (the default scope %r is made unique, so it '
                    'never holds variables yet)' % (reuse, default_name))
            scope = _tf_vs._get_unique_variable_scope(default_name)  # pylint: disable=protected-access
        elif not isinstance(scope, str):
            raise TypeError('scope must be None, a string or a '
                            'tf.compat.v1.VariableScope, got %r (type %s)'
                            % (scope, type(scope).__name__))
        name = current.name + '/' + scope if current.name else scope
        reuse = reuse or current.reuse
        special = (current.custom_getter is not None
                   or current.partitioner is not None)
    return name, reuse, special


def check_scope(scope, default_name, reuse, variables):
    """Checks that the block's variables can be created (or reused) under its
    scope, before the block adds any op.

    ``tf.compat.v1.get_variable`` would raise the same errors, but only after
    the block had added the ops before its first variable (up to nine) to the
    graph. Pure Python: it reads the graph's variable store and scope counts,
    and creates nothing.

    Args:
      scope, default_name, reuse: as the block passes them to
        ``tf.compat.v1.variable_scope``.
      variables: ``(name relative to the scope, shape, dtype)`` of every
        variable the block will create, as :func:`layer_variables` and the
        other ``*_variables`` helpers list them.

    Raises:
      ValueError: ``reuse`` is not True/False/None/AUTO_REUSE, or is set
        without a scope; without reuse, a variable already exists; with
        ``reuse=True``, one does not exist yet; with reuse, an existing one has
        another shape or dtype.
      TypeError: ``scope`` is not None, a string or a VariableScope.
    """
    check_reuse(reuse)
    if tf.executing_eagerly():
        return  # no graph to leave ops in; TF2 eager get_variable never reuses
    name, reuse, special = _scope_and_reuse(scope, default_name, reuse)
    if special:
        return  # a custom getter or partitioner decides the names itself
    existing = _tf_vs._get_default_variable_store()._vars  # pylint: disable=protected-access
    full = [(name + '/' + rel, tf.TensorShape(shape), tf.as_dtype(dtype))
            for rel, shape, dtype in variables]
    if not reuse:
        clash = [n for n, _, _ in full if n in existing]
        if clash:
            raise ValueError(
                'scope %r already holds this block\'s variables (%s%s) and reuse '
                'is not set; give reuse=True or tf.compat.v1.AUTO_REUSE to share '
                'them, or another scope' % (name, clash[0], ', ... %d in all'
                                             % len(clash) if len(clash) > 1 else ''))
        return
    if reuse is True:
        missing = [n for n, _, _ in full if n not in existing]
        if missing:
            raise ValueError(
                'reuse=True but scope %r does not hold this block\'s variable %s '
                '(%d of %d missing); create them first (reuse=None) or give '
                'reuse=tf.compat.v1.AUTO_REUSE' % (name, missing[0], len(missing),
                                                   len(full)))
    for n, shape, dtype in full:
        found = existing.get(n)
        if found is None:
            continue
        if not shape.is_compatible_with(found.shape):
            raise ValueError(
                'reuse=%r: variable %s has shape %s but this call needs %s (from '
                'the inputs\' channels and the block\'s arguments)'
                % (reuse, n, found.shape, shape))
        if not dtype.is_compatible_with(found.dtype):
            raise ValueError(
                'reuse=%r: variable %s has dtype %s but this call needs %s (the '
                'compute dtype of %s inputs)' % (reuse, n, found.dtype.base_dtype.name,
                                                dtype.name, dtype.name))


def hidden_units(channels, reduction_ratio=None, inner_units_ratio=None):
    """Bottleneck width: ``max(1, C // r)`` or ``max(1, int(C * inner_units_ratio))``."""
    if inner_units_ratio is not None:
        return max(1, int(channels * inner_units_ratio))
    return max(1, int(channels // reduction_ratio))


# --------------------------------------------------------------------------
# Layout and dtype
# --------------------------------------------------------------------------
def channel_axis(data_format):
    return 3 if data_format == 'NHWC' else 1


def spatial_axes(data_format):
    return [1, 2] if data_format == 'NHWC' else [2, 3]


# --------------------------------------------------------------------------
# Fused gradients (pooling, softmax attention)
#
# The gradients are registered under fixed names (gradient_override_map on an
# IdentityN that carries the results and the inputs they need), not as
# tf.custom_gradient closures: a graph exported with export_meta_graph and
# imported in another process (after ``import slim_attention``) can still be
# differentiated, because the gradient needs nothing but the op's inputs. In
# eager mode the override does not apply and IdentityN passes gradients
# through to the plain ops, which give the same values.
# --------------------------------------------------------------------------
_MEAN_POOL_GRAD = 'SlimAttentionMeanPool'
_MEAN_MAX_POOL_GRAD = 'SlimAttentionMeanMaxPool'
_SOFTMAX_ATTENTION_GRAD = 'SlimAttentionSoftmaxAttention'
_ATTENTION_POOL_GRAD = 'SlimAttentionAttentionPool'


def _register_gradient(name, fn):
    try:
        tf.RegisterGradient(name)(fn)
    except KeyError:  # already registered (the module was reloaded)
        pass


def _pool_geometry(x, axes):
    """``(kept, n)``: x's dynamic shape with 1 on ``axes`` (an int32 tensor),
    and the number of elements reduced, in x's dtype."""
    shape = tf.shape(x)
    kept = tf.tensor_scatter_nd_update(shape, tf.expand_dims(axes, 1),
                                       tf.ones_like(axes))
    n = tf.cast(tf.reduce_prod(tf.gather(shape, axes)), x.dtype)
    return kept, n


def _mean_pool_grad(op, d_mean, *unused):
    """IdentityN([mean, x, axes]) -> the mean's gradient w.r.t. x, broadcast once."""
    del unused
    _, x, axes = op.inputs
    if d_mean is None:
        return [None, None, None]
    kept, n = _pool_geometry(x, axes)
    return [None, tf.broadcast_to(tf.reshape(d_mean, kept) / n, tf.shape(x)), None]


def _mean_max_pool_grad(op, d_mean, d_max, *unused):
    """IdentityN([mean, max_kept, x, axes]) -> both reductions' gradient w.r.t.
    x in one where(): the mean's spread evenly, the max's split evenly between
    tied maxima (TensorFlow's own rule)."""
    del unused
    _, peak, x, axes = op.inputs
    if d_mean is None and d_max is None:
        return [None] * 4
    kept, n = _pool_geometry(x, axes)
    spread = tf.zeros(kept, x.dtype) if d_mean is None else tf.reshape(d_mean, kept) / n
    if d_max is None:
        return [None, None, tf.broadcast_to(spread, tf.shape(x)), None]
    is_max = tf.equal(x, peak)
    ties = tf.reduce_sum(tf.cast(is_max, x.dtype), axes, keepdims=True)
    dx = tf.where(is_max, spread + tf.reshape(d_max, kept) / ties, spread)
    return [None, None, dx, None]


def _softmax_attention_grad(op, d_y, *unused):
    """IdentityN([y, logits, values, attention, transposed]) -> gradients of
    ``y = softmax(logits) @ values`` w.r.t. logits and values.

    The softmax gradient ``A * (dA - rowsum(dA * A))`` needs the row sums of
    the [N, M, L] product ``dA * A``; since ``dA = dy values^T`` they equal
    ``rowsum(dy * y)``, a product of [N, M, C] tensors (the identity
    FlashAttention's backward pass uses). That form is used when C < L (the
    usual case: a non-local block's Ci against its H*W); otherwise, or when L
    or C is unknown, the direct one. Same values either way.
    """
    del unused
    y, _, values, attention, transposed = op.inputs
    if d_y is None:
        return [None] * 5
    # ``transposed`` is a Const the block wrote: its value is known here.
    transposed = bool(tf.get_static_value(transposed))
    if transposed:  # values [N, C, L], y [N, C, M]
        d_att = tf.matmul(d_y, values, transpose_a=True)  # [N, M, L]
        d_values = tf.matmul(d_y, attention)  # [N, C, L]
        width, length = static_dim(values, 1), static_dim(values, 2)
    else:  # values [N, L, C], y [N, M, C]
        d_att = tf.matmul(d_y, values, transpose_b=True)  # [N, M, L]
        d_values = tf.matmul(attention, d_y, transpose_a=True)  # [N, L, C]
        width, length = static_dim(values, 2), static_dim(values, 1)
    if width is not None and length is not None and width < length:
        row_dot = tf.reduce_sum(d_y * y, 1 if transposed else -1)  # [N, M]
        row_dot = tf.expand_dims(row_dot, -1)  # [N, M, 1]
    else:
        row_dot = tf.reduce_sum(d_att * attention, -1, keepdims=True)  # [N, M, 1]
    d_logits = attention * (d_att - row_dot)
    return [None, d_logits, d_values, None, None]


def _attention_pool_grad(op, d_context, *unused):
    """IdentityN([context, x, logits, weights, kernel, nchw]) -> gradients of
    GC's attention pooling ``context = softmax(logits) . x`` w.r.t. x and the
    logits, where ``logits = conv1x1(stop_gradient(x), kernel) (+ bias)``.

    x gets both of its terms at once, the pooling's ``weights (x) d_context``
    and the mask convolution's ``d_logits (x) kernel``, as one batched matmul
    with an inner dimension of 2, instead of a Conv2DBackpropInput and a
    matmul gradient that tf.gradients would then add up (with the residual
    term, an AddN of three full-size tensors).
    """
    del unused
    _, x, _, weights, kernel, nchw = op.inputs  # weights [N, HW], kernel [1,1,C,1]
    if d_context is None:
        return [None] * 6
    nchw = bool(tf.get_static_value(nchw))  # a Const the block wrote
    batch = tf.shape(x)[0]
    channels = static_dim(x, 1 if nchw else -1)
    kernel = tf.tile(tf.reshape(kernel, [1, 1, channels]), [batch, 1, 1])  # [N, 1, C]
    d_context = tf.reshape(d_context, [batch, 1, channels])  # [N, 1, C]
    if nchw:
        flat = tf.reshape(x, [batch, channels, -1])  # [N, C, HW]
        d_weights = tf.matmul(d_context, flat)[:, 0, :]  # [N, HW]
    else:
        flat = tf.reshape(x, [batch, -1, channels])  # [N, HW, C]
        d_weights = tf.matmul(d_context, flat, transpose_b=True)[:, 0, :]  # [N, HW]
    d_logits = weights * (d_weights - tf.reduce_sum(d_weights * weights, -1,
                                                    keepdims=True))  # softmax
    left = tf.stack([weights, d_logits], 1)  # [N, 2, HW]
    right = tf.concat([d_context, kernel], 1)  # [N, 2, C]
    if nchw:
        d_x = tf.matmul(right, left, transpose_a=True)  # [N, C, HW]
    else:
        d_x = tf.matmul(left, right, transpose_a=True)  # [N, HW, C]
    return [None, tf.reshape(d_x, tf.shape(x)), d_logits, None, None, None]


_register_gradient(_MEAN_POOL_GRAD, _mean_pool_grad)
_register_gradient(_ATTENTION_POOL_GRAD, _attention_pool_grad)
_register_gradient(_MEAN_MAX_POOL_GRAD, _mean_max_pool_grad)
_register_gradient(_SOFTMAX_ATTENTION_GRAD, _softmax_attention_grad)


def _axes(x, axis):
    """``axis`` (an int or ints, possibly negative) as non-negative ints."""
    rank = static_shape(x).rank  # the blocks' inputs have a known rank (check_inputs)
    return [a % rank for a in ([axis] if isinstance(axis, int) else axis)]


def mean_pool(x, axis):
    """``reduce_mean(x, axis)`` with a one-pass gradient.

    TensorFlow's gradient of a mean tiles the upstream gradient to the input's
    shape and then divides the full-size tile by the count; here the small
    gradient is divided first and broadcast once (one full-size write instead
    of three full-size passes). Same values as TensorFlow's.

    Args:
      x: a float tensor of known rank.
      axis: an int or list of ints, the axes to reduce.

    Returns:
      ``x``'s mean over ``axis``, of ``x``'s shape without ``axis``.
    """
    axes = _axes(x, axis)
    mean = tf.reduce_mean(x, axes)
    with tf1.get_default_graph().gradient_override_map({'IdentityN': _MEAN_POOL_GRAD}):
        return tf.identity_n([mean, x, tf.constant(axes, tf.int32)])[0]


def mean_and_max(x, axis):
    """``(reduce_mean(x, axis), reduce_max(x, axis))`` with one fused gradient.

    The values are exactly the two reductions'. The gradient is TensorFlow's
    (the mean's spread evenly, the max's split evenly between tied maxima)
    computed in one pass, ``where(x == max, d_mean / n + d_max / ties,
    d_mean / n)``, instead of the two reductions' separate gradients (Tile,
    Equal, Cast, RealDiv, Mul on the full input). It also leaves ``x`` with
    one gradient term fewer: with three (mean, max and a gating multiply)
    tf.gradients sums three full-size tensors, which Grappler's memory
    optimizer may lower to a TemporaryVariable and three locked AssignAdds,
    measured 2.4x slower than the AddN it replaces.

    Args:
      x: a float tensor of known rank.
      axis: an int or list of ints, the axes to reduce.

    Returns:
      ``(mean, max)``, each of ``x``'s shape without ``axis``.
    """
    axes = _axes(x, axis)
    mean = tf.reduce_mean(x, axes)
    peak = tf.reduce_max(x, axes, keepdims=True)
    with tf1.get_default_graph().gradient_override_map({'IdentityN': _MEAN_MAX_POOL_GRAD}):
        mean, peak = tf.identity_n([mean, peak, x, tf.constant(axes, tf.int32)])[:2]
    return mean, tf.squeeze(peak, axes)


def softmax_attention(logits, values, transposed=False):
    """``softmax(logits, -1)`` applied to ``values``, with a lighter gradient.

    ``logits`` is [N, M, L]. With ``transposed=False`` ``values`` is [N, L, C]
    and the result ``softmax(logits) @ values`` is [N, M, C]; with
    ``transposed=True`` ``values`` is [N, C, L] and the result
    ``values @ softmax(logits)^T`` is [N, C, M]. The forward pass is those two
    ops; the gradient (see :func:`_softmax_attention_grad`) skips two passes
    over the [N, M, L] matrix that TensorFlow's softmax gradient makes.

    Returns:
      The result, [N, M, C] or [N, C, M].
    """
    attention = tf.nn.softmax(logits, axis=-1)
    if transposed:
        y = tf.matmul(values, attention, transpose_b=True)
    else:
        y = tf.matmul(attention, values)
    with tf1.get_default_graph().gradient_override_map(
            {'IdentityN': _SOFTMAX_ATTENTION_GRAD}):
        return tf.identity_n([y, logits, values, attention,
                              tf.constant(bool(transposed))])[0]


def attention_pool(x, mask_args, data_format, scope='conv_mask'):
    """GC's attention pooling: ``softmax_HW(conv1x1(x; C -> 1)) . x``.

    The mask convolution has slim's variables ``scope/weights`` [1, 1, C, 1]
    and ``scope/biases`` [1] (per ``mask_args``, a :class:`LayerArgs`). The
    forward pass is the plain ops; the gradient w.r.t. ``x`` is fused (see
    :func:`_attention_pool_grad`), the mask's variables get theirs from the
    convolution's own gradient.

    Returns:
      The context, [N, 1, C] (NHWC) or [N, C, 1] (NCHW).
    """
    kernels = []

    def mask_conv(net, kernel):
        kernels.append(kernel)
        return pointwise(net, kernel, data_format)

    channels = static_dim(x, channel_axis(data_format))
    # stop_gradient: x's gradient through the mask comes from the fused gradient.
    logits = weighted_layer(tf.stop_gradient(x), mask_conv, [1, 1, channels, 1],
                            mask_args, scope, data_format)  # [N,H,W,1] / [N,1,H,W]
    batch = tf.shape(x)[0]
    logits = tf.reshape(logits, [batch, -1])  # [N, HW]
    weights = tf.nn.softmax(logits)  # [N, HW]
    if data_format == 'NHWC':
        flat = tf.reshape(x, [batch, -1, channels])  # [N, HW, C]
        context = tf.matmul(weights[:, None, :], flat)  # [N, 1, C]
    else:
        flat = tf.reshape(x, [batch, channels, -1])  # [N, C, HW]
        context = tf.matmul(flat, weights[:, :, None])  # [N, C, 1]
    with tf1.get_default_graph().gradient_override_map({'IdentityN': _ATTENTION_POOL_GRAD}):
        return tf.identity_n([context, x, logits, weights,
                              tf.convert_to_tensor(kernels[0]),
                              tf.constant(data_format == 'NCHW')])[0]


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


def compute_dtype(dtype):
    """Dtype of the variables and of the attention branch for an input dtype.

    float16 and bfloat16 inputs get float32 variables and a float32 attention
    branch (mixed precision: exact statistics and softmax, and one checkpoint
    that serves float32 and half-precision graphs alike); float32 and float64
    inputs use their own dtype, like slim.
    """
    return tf.float32 if dtype in _HALF_DTYPES else dtype


def cast_in(inputs, dtype, cdtype):
    """Returns ``(inputs, x)``: the inputs as a tensor, and ``x`` in the compute dtype.

    ``dtype`` is the input dtype (:func:`check_inputs`), ``cdtype`` the
    compute dtype (:func:`compute_dtype`); ``x`` is ``inputs`` itself when
    they are the same. Call it inside the block's scope.
    """
    inputs = tf.convert_to_tensor(inputs)
    x = tf.cast(inputs, cdtype) if cdtype != dtype else inputs
    return inputs, x


def scale_channels(inputs, gate, channels, data_format):
    """``inputs * gate`` for a per-image channel gate of C values ([N, C] or [N, C, 1]).

    The gate (in the compute dtype) is cast to the input dtype and reshaped to
    broadcast over H and W.
    """
    gate = tf.reshape(tf.cast(gate, inputs.dtype),
                      gate_shape(channels, data_format))  # [N,1,1,C] or [N,C,1,1]
    return inputs * gate


def pointwise(x, weights, data_format):
    """1x1 convolution; ``weights`` is [1, 1, Cin, Cout].

    NHWC is ``tf.nn.conv2d`` (oneDNN's 1x1 convolution; TF's Einsum kernel and
    its gradient Einsums are 2-3x slower on CPU). NCHW is a batched matmul over
    [N, Cin, HW] (CPU has no NCHW convolution kernel).
    """
    if data_format == 'NHWC':
        return tf.nn.conv2d(x, weights, strides=1, padding='VALID')
    cin, cout = static_dim(weights, 2), static_dim(weights, 3)
    shape = tf.shape(x)
    kernel = tf.reshape(weights, [cin, cout])
    flat = tf.reshape(x, [shape[0], cin, -1])  # [N, Cin, HW]
    out = tf.matmul(kernel, flat, transpose_a=True)  # [N, Cout, HW]
    return tf.reshape(out, [shape[0], cout, shape[2], shape[3]])  # [N, Cout, H, W]


def gate_shape(channels, data_format):
    """Shape [-1, 1, 1, C] (NHWC) or [-1, C, 1, 1] (NCHW) of a per-image channel gate."""
    return [-1, 1, 1, channels] if data_format == 'NHWC' else [-1, channels, 1, 1]


def bias_shape(data_format):
    """Broadcast shape ([1,1,1,-1] or [1,-1,1,1]) of a per-channel vector."""
    return [1, 1, 1, -1] if data_format == 'NHWC' else [1, -1, 1, 1]


# --------------------------------------------------------------------------
# Initializers of the official code
# --------------------------------------------------------------------------
def torch_default_initializer():
    """PyTorch's default Linear/Conv init, ``kaiming_uniform(a=sqrt(5))``: U(+-1/sqrt(fan_in))."""
    return tf1.variance_scaling_initializer(
        scale=1.0 / 3.0, mode='fan_in', distribution='uniform')


def gamma_initializer(zero_init_last):
    """A block's last batch norm gamma: zeros if ``zero_init_last`` (official init), else ones."""
    return tf1.zeros_initializer() if zero_init_last else tf1.ones_initializer()


def he_normal_initializer(mode):
    """``kaiming_normal(mode=mode)`` for a relu gain: N(0, 2/fan)."""
    return tf1.variance_scaling_initializer(
        scale=2.0, mode=mode, distribution='untruncated_normal')


# --------------------------------------------------------------------------
# Variables
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
``dtype`` is the compute dtype (:func:`compute_dtype`);
``biases_initializer=None`` means no bias (as in slim).
"""


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


def norm_variables(scope, channels, dtype, moving=False):
    """The variables of :func:`layer_norm` (``moving=False``) or
    :func:`batch_norm` (``moving=True``) under ``scope``, in creation order."""
    names = ['beta', 'gamma'] + (['moving_mean', 'moving_variance'] if moving else [])
    return [(scope + '/' + n, [channels], dtype) for n in names]


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
    return weighted_layer(x, tf.matmul, [static_dim(x, -1), units], args, scope)


def mlp(x, units, activation_fn, args):
    """SE's excitation and CBAM's shared channel MLP: ``fc2(activation_fn(fc1(x)))``.

    On [B, C]: ``fc1`` (C -> units, ``fc1/weights``, ``fc1/biases``), then
    ``fc2`` (units -> C); returns the [B, C] logits (no gate).
    """
    hidden = activation_fn(dense(x, units, args, 'fc1'))  # [B, P]
    return dense(hidden, static_dim(x, -1), args, 'fc2')  # [B, C]


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
      ValueError, TypeError: as :func:`check_data_format`,
        :func:`check_ratios`, :func:`check_callable` and :func:`check_inputs`.
    """
    check_data_format(data_format)
    reduction_ratio, inner_units_ratio = check_ratios(
        reduction_ratio, inner_units_ratio, 16)
    check_callable('activation_fn', activation_fn)
    check_callable('gate_fn', gate_fn)
    dtype, channels = check_inputs(inputs, data_format)
    units = hidden_units(channels, reduction_ratio, inner_units_ratio)
    if weights_initializer is None:
        weights_initializer = torch_default_initializer()
    args = LayerArgs(compute_dtype(dtype), weights_initializer,
                     weights_regularizer, biases_initializer,
                     biases_regularizer, trainable, variables_collections)
    return dtype, channels, units, args


def conv1x1(x, units, args, data_format, scope):
    """1x1 convolution with slim.conv2d's variables (``weights`` [1,1,Cin,Cout], ``biases``)."""
    cin = static_dim(x, channel_axis(data_format))
    return weighted_layer(
        x, lambda net, weights: pointwise(net, weights, data_format),
        [1, 1, cin, units], args, scope, data_format)


def _offset_and_scale(channels, dtype, gamma_initializer, trainable,
                      variables_collections):
    """A normalisation layer's trainable ``beta`` (zeros) and ``gamma`` [C], in slim's order."""
    beta = variable('beta', [channels], dtype, tf1.zeros_initializer(),
                    None, trainable, variables_collections, 'beta')
    gamma = variable('gamma', [channels], dtype, gamma_initializer,
                     None, trainable, variables_collections, 'gamma')
    return beta, gamma


def _normalize(x, mean, variance, beta, gamma, epsilon, data_format):
    """``gamma * (x - mean) / sqrt(variance + epsilon) + beta``, beta and gamma per channel."""
    shape = bias_shape(data_format)
    return tf.nn.batch_normalization(
        x, mean, variance, tf.reshape(beta, shape), tf.reshape(gamma, shape),
        epsilon)


def batch_norm(x, is_training, decay, epsilon, gamma_initializer, dtype,
               trainable, variables_collections, data_format,
               scope='BatchNorm'):
    """Batch normalisation over the channel axis, with slim's variable names.

    Variables ``scope/gamma``, ``scope/beta`` (trainable) and
    ``scope/moving_mean``, ``scope/moving_variance`` (not trainable).
    Training normalises with the batch's mean and (biased) variance; the moving
    averages are updated with the batch mean and the unbiased (Bessel-corrected)
    variance, as PyTorch and TF's fused batch norm do, by ops added to
    ``tf.compat.v1.GraphKeys.UPDATE_OPS``. ``is_training`` may be a Python bool
    or a scalar bool tensor.

    float16/bfloat16/float32 use ``fused_batch_norm`` (one kernel forward and
    backward, 2-3x faster on CPU than the moments form; in training it
    normalises with the biased variance and returns the unbiased one, exactly
    what the moving update needs); float64, which the fused kernel lacks, uses
    ``tf.nn.moments`` and ``tf.nn.batch_normalization``.

    A bool tensor ``is_training`` builds no ``tf.cond``: both normalisations
    are computed and ``tf.where`` passes the selected one on bit for bit (the
    other gets a zero gradient), and the moving-average update subtracts a
    ``tf.where``-gated step, exactly zero when not training. A TF2 cond
    (``If``/``StatelessIf``) cannot be differentiated once a session has run
    it -- its gradient needs intermediate outputs that the op which ran does
    not have -- and TF1 code builds training ops after a first run (evaluate,
    then train; restore, then fine-tune). The price is the unused
    normalisation, one pass over a map the blocks keep small.
    """
    cax = channel_axis(data_format)
    channels = static_dim(x, cax)
    fused = x.dtype.base_dtype in (tf.float16, tf.bfloat16, tf.float32)
    with tf1.variable_scope(scope):
        beta, gamma = _offset_and_scale(channels, dtype, gamma_initializer,
                                        trainable, variables_collections)
        moving_mean = variable('moving_mean', [channels], dtype,
                               tf1.zeros_initializer(), None, False,
                               variables_collections, 'moving_mean')
        moving_variance = variable('moving_variance', [channels], dtype,
                                   tf1.ones_initializer(), None, False,
                                   variables_collections, 'moving_variance')

        def normalize(mean, variance):  # per-channel [C] statistics
            shape = bias_shape(data_format)
            return _normalize(x, tf.reshape(mean, shape), tf.reshape(variance, shape),
                              beta, gamma, epsilon, data_format)

        def train_bn():
            """Returns (output, batch mean, unbiased batch variance)."""
            if fused:
                return tf1.nn.fused_batch_norm(x, gamma, beta, epsilon=epsilon,
                                               data_format=data_format,
                                               is_training=True)
            axes = [a for a in range(4) if a != cax]
            mean, variance = tf.nn.moments(x, axes)
            count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), dtype)
            unbiased = variance * count / tf.maximum(count - 1.0, 1.0)
            return normalize(mean, variance), mean, unbiased

        def infer_bn():
            """Returns (output, moving mean, moving variance)."""
            mean, variance = tf.identity(moving_mean), tf.identity(moving_variance)
            if fused:
                y, _, _ = tf1.nn.fused_batch_norm(
                    x, gamma, beta, mean=mean, variance=variance, epsilon=epsilon,
                    data_format=data_format, is_training=False)
            else:
                y = normalize(mean, variance)
            return y, mean, variance

        def update_moving_stats(mean, unbiased, gate=None):
            """The moving-average update; with a bool tensor ``gate``, a no-op
            (minus exactly zero) when it is False."""
            def step(var, value):
                delta = (var - value) * (1.0 - decay)
                if gate is not None:
                    # where, not a multiply by 0/1: a non-finite batch
                    # statistic in inference must not reach the variable.
                    delta = tf.where(gate, delta, tf.zeros_like(delta))
                return tf1.assign_sub(var, delta)
            return tf.group(step(moving_mean, mean), step(moving_variance, unbiased))

        if isinstance(is_training, bool):
            if not is_training:
                return infer_bn()[0]
            y, mean, unbiased = train_bn()
            tf1.add_to_collection(tf1.GraphKeys.UPDATE_OPS,
                                  update_moving_stats(mean, unbiased))
            return y
        y_train, mean, unbiased = train_bn()
        y = tf.where(is_training, y_train, infer_bn()[0])
        tf1.add_to_collection(tf1.GraphKeys.UPDATE_OPS,
                              update_moving_stats(mean, unbiased, is_training))
        return y


def check_is_training(is_training):
    """A Python bool or a scalar bool tensor; raises TypeError otherwise."""
    if isinstance(is_training, (bool, np.bool_)):
        return bool(is_training)
    if tf.is_tensor(is_training) and is_training.dtype == tf.bool \
            and is_training.shape.rank in (0, None):
        return is_training
    raise TypeError('is_training must be a Python bool or a scalar bool '
                    'tensor, got %r' % (is_training,))


def layer_norm(x, epsilon, dtype, trainable, variables_collections,
               data_format, scope='LayerNorm'):
    """LayerNorm over the channel axis of a [N,1,1,C] (or [N,C,1,1]) tensor.

    Variables ``scope/gamma`` (ones) and ``scope/beta`` (zeros), as slim.layer_norm.
    """
    cax = channel_axis(data_format)
    channels = static_dim(x, cax)
    with tf1.variable_scope(scope):
        beta, gamma = _offset_and_scale(channels, dtype, tf1.ones_initializer(),
                                        trainable, variables_collections)
        mean, variance = tf.nn.moments(x, [cax], keepdims=True)
        return _normalize(x, mean, variance, beta, gamma, epsilon, data_format)


def collect(outputs_collections, name, outputs):
    """slim's ``collect_named_outputs``."""
    return slim_utils.collect_named_outputs(outputs_collections, name, outputs)
