"""Argument checks, data_format axes and the dtype policy of the attention blocks.

One place for: argument validation (ValueError/TypeError naming the argument,
the value and what was expected, raised before any op exists; that includes
the variable scope, checked against the variables the block will create by
:func:`check_scope`), the input contract and channel count, the bottleneck
width, data_format axes, and the compute dtype policy. Pure Python: nothing
here creates an op but :func:`cast_in`, which the block calls inside its
scope.
"""
import math
import numbers

import numpy as np
import tensorflow as tf
# variable_scope's own name resolution and variable store (check_scope).
from tensorflow.python.ops import variable_scope as tf_variable_scope  # pylint: disable=g-direct-tensorflow-import

tf1 = tf.compat.v1

DATA_FORMATS = ('NHWC', 'NCHW')
HALF_DTYPES = (tf.float16, tf.bfloat16)


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


def hidden_units(channels, reduction_ratio=None, inner_units_ratio=None):
    """Bottleneck width: ``max(1, C // r)`` or ``max(1, int(C * inner_units_ratio))``."""
    if inner_units_ratio is not None:
        return max(1, int(channels * inner_units_ratio))
    return max(1, int(channels // reduction_ratio))


def check_is_training(is_training):
    """A Python bool or a scalar bool tensor; raises TypeError otherwise."""
    if isinstance(is_training, (bool, np.bool_)):
        return bool(is_training)
    if tf.is_tensor(is_training) and is_training.dtype == tf.bool \
            and is_training.shape.rank in (0, None):
        return is_training
    raise TypeError('is_training must be a Python bool or a scalar bool '
                    'tensor, got %r' % (is_training,))


# --------------------------------------------------------------------------
# The inputs: static shape, rank, channels, dtype
# --------------------------------------------------------------------------
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


# --------------------------------------------------------------------------
# Variable scope and reuse
# --------------------------------------------------------------------------
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
            scope = tf_variable_scope._get_unique_variable_scope(default_name)  # pylint: disable=protected-access
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
    existing = tf_variable_scope._get_default_variable_store()._vars  # pylint: disable=protected-access
    full = [(name + '/' + rel, tf.TensorShape(shape), tf.as_dtype(dtype))
            for rel, shape, dtype in variables]
    if not reuse:
        _check_new_variables(name, full, existing)
    else:
        _check_reused_variables(name, reuse, full, existing)


def _check_new_variables(name, full, existing):
    """Without reuse: none of ``full`` (``(name, shape, dtype)``) may exist yet."""
    clash = [n for n, _, _ in full if n in existing]
    if clash:
        raise ValueError(
            'scope %r already holds this block\'s variables (%s%s) and reuse '
            'is not set; give reuse=True or tf.compat.v1.AUTO_REUSE to share '
            'them, or another scope' % (name, clash[0], ', ... %d in all'
                                         % len(clash) if len(clash) > 1 else ''))


def _check_reused_variables(name, reuse, full, existing):
    """With reuse: with True, all of ``full`` exist; those that exist match it."""
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


# --------------------------------------------------------------------------
# Layout and dtype policy
# --------------------------------------------------------------------------
def channel_axis(data_format):
    """The channel axis of a 4-D tensor in ``data_format``: 3 (NHWC) or 1 (NCHW)."""
    return 3 if data_format == 'NHWC' else 1


def spatial_axes(data_format):
    """The H and W axes in ``data_format``: [1, 2] (NHWC) or [2, 3] (NCHW)."""
    return [1, 2] if data_format == 'NHWC' else [2, 3]


def gate_shape(channels, data_format):
    """Shape [-1, 1, 1, C] (NHWC) or [-1, C, 1, 1] (NCHW) of a per-image channel gate."""
    return [-1, 1, 1, channels] if data_format == 'NHWC' else [-1, channels, 1, 1]


def bias_shape(data_format):
    """Broadcast shape ([1,1,1,-1] or [1,-1,1,1]) of a per-channel vector."""
    return [1, 1, 1, -1] if data_format == 'NHWC' else [1, -1, 1, 1]


def compute_dtype(dtype):
    """Dtype of the variables and of the attention branch for an input dtype.

    float16 and bfloat16 inputs get float32 variables and a float32 attention
    branch (mixed precision: exact statistics and softmax, and one checkpoint
    that serves float32 and half-precision graphs alike); float32 and float64
    inputs use their own dtype, like slim.
    """
    return tf.float32 if dtype in HALF_DTYPES else dtype


def cast_in(inputs, dtype, cdtype):
    """Returns ``(inputs, x)``: the inputs as a tensor, and ``x`` in the compute dtype.

    ``dtype`` is the input dtype (:func:`check_inputs`), ``cdtype`` the
    compute dtype (:func:`compute_dtype`); ``x`` is ``inputs`` itself when
    they are the same. Call it inside the block's scope.
    """
    inputs = tf.convert_to_tensor(inputs)
    x = tf.cast(inputs, cdtype) if cdtype != dtype else inputs
    return inputs, x
