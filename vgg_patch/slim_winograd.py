"""Winograd F(2x2, 3x3) in tf-slim's networks, for chosen convolutions only.

tf-slim's ``layers.conv2d`` (and so every network of ``slim_attention.nets``)
computes its convolution with a legacy Keras ``Conv2D`` layer, which takes
TensorFlow's ``nn_ops.convolution_v2`` when it is built, on its first call.
:func:`winograd_convolutions` stands in for that one function while a network
is built: a convolution whose variable scope ``match`` accepts, and which is
one :func:`vgg_patch.winograd.conv2d_3x3` computes (3x3 filters, stride 1, no
dilation, 'SAME', NHWC, float32 with static sizes), is computed by Winograd;
every other call goes to TensorFlow's function unchanged.

Nothing else changes: tf-slim creates the same variables under the same
names (``.../conv2/weights``, its batch norm, ...), so checkpoints, exports
and tf-slim's model-zoo checkpoints are the same either way; only the ops that
compute the convolution differ (and their names, under ``Winograd``).

:func:`scope_matcher` makes ``match`` for the layer names of
:func:`vgg_patch.fastpath.slim_winograd_layers`: a ResNet's blocks
(``'block2'``: every unit's ``conv2`` there) or a VGG's layers (``'conv3_2'``).
A ResNet unit of stride 2 (the last of blocks 1-3) has its ``conv2`` at
stride 2, which F(2x2, 3x3) does not compute: it stays direct.

NOTE: the stand-in is a module attribute of TensorFlow, replaced for the
duration of the ``with`` block and restored after it. It acts only in the
graph that was the default when the block was entered, so a graph another
thread builds meanwhile is not affected.
"""
import contextlib
import logging
import re

from tensorflow.python.ops import nn_ops

from vgg_patch import winograd

__all__ = ['winograd_convolutions', 'scope_matcher', 'plain_3x3']

_LOG = logging.getLogger(__name__)

# A ResNet unit's 3x3 convolution ('.../block2/unit_1/bottleneck_v1/conv2') and
# a VGG layer ('.../conv3/conv3_2'); the group is the name the rule uses.
_RESNET_CONV2 = re.compile(r'(?:^|/)(block\d+)/unit_\d+/bottleneck_v\d/conv2$')
_VGG_CONV = re.compile(r'(?:^|/)conv\d/(conv\d_\d+)$')


def scope_matcher(names):
    """``match(scope)``: True for the conv scopes of ``names``.

    Args:
      names: ResNet block names (``'block1'`` ... ``'block4'``) and/or VGG
        layer names (``'conv3_1'`` ...).

    Returns:
      A function of a variable scope's name.
    """
    names = frozenset(names)

    def match(scope):
        found = _RESNET_CONV2.search(scope) or _VGG_CONV.search(scope)
        return bool(found) and found.group(1) in names
    return match


def _ones(value):
    return value is None or all(v == 1 for v in (
        value if isinstance(value, (list, tuple)) else [value]))


def plain_3x3(strides, padding, data_format, dilations):
    """True for the convolutions Winograd F(2x2, 3x3) computes (filters and
    dtype aside): stride 1, no dilation, 'SAME', NHWC."""
    return (_ones(strides) and _ones(dilations) and padding == 'SAME'
            and data_format in (None, 'NHWC'))


@contextlib.contextmanager
def winograd_convolutions(match):
    """Computes the convolutions tf-slim builds in scopes ``match`` accepts by Winograd.

    Args:
      match: a function of a variable scope's name (see :func:`scope_matcher`).

    Yields:
      A list, filled with the scopes computed by Winograd as they are built.
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    graph = tf.compat.v1.get_default_graph()
    original = nn_ops.convolution_v2
    chosen = []

    def convolution(input, filters, strides=None, padding='VALID',  # pylint: disable=redefined-builtin
                    data_format=None, dilations=None, name=None):
        scope = tf.compat.v1.get_variable_scope().name
        if (tf.compat.v1.get_default_graph() is graph
                and plain_3x3(strides, padding, data_format, dilations)
                and match(scope) and winograd.supports(input, filters)):
            chosen.append(scope)
            return winograd.conv2d_3x3(input, filters)
        return original(input, filters, strides=strides, padding=padding,
                        data_format=data_format, dilations=dilations, name=name)

    nn_ops.convolution_v2 = convolution
    try:
        yield chosen
    finally:
        nn_ops.convolution_v2 = original
    _LOG.debug('Winograd in %d convolutions: %s', len(chosen), chosen)
