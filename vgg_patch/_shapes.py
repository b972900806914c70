"""Static shapes read the same way under TF2 behaviour and after
``tf.compat.v1.disable_v2_behavior()``.

Under v1 behaviour ``tensor.shape[i]`` is a ``Dimension`` (no unary minus,
``Dimension(None) != 3`` is None, not True) and ``str(shape)`` reads
``(?, 224, 224, 3)``; under TF2 it is an int or None. vgg_patch reads static
shapes only through these helpers, which give plain ints and None either way.
"""
import tensorflow as tf


def dims(value):
    """The static shape of a tensor, variable or ``TensorShape`` as a list of
    ints (None where unknown), or None when the rank is unknown."""
    shape = tf.TensorShape(getattr(value, 'shape', value))
    return None if shape.rank is None else shape.as_list()


def text(value):
    """The static shape as text, ``(None, 224, 224, 3)``, in both behaviours."""
    shape = dims(value)
    return '<unknown>' if shape is None else str(tuple(shape))
