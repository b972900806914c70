"""tf-slim's VGG (A, 16, 19) with an ``attention_module`` argument.

Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", 2014. Same names and signatures as ``tf_slim.nets.vgg``, plus
``attention_module`` (None, 'se', 'cbam', 'sam', 'gc', 'eca', 'nl'; 'se_block'
and 'cbam_block' too), ``attention_params`` (a dict for the block) and
``attention_stages`` (stages 1-5, conv1-conv5). Anything else
(``vgg_arg_scope``, ...) is tf-slim's own object.

Placement (no paper puts these blocks in VGG): after the last conv (and its
relu) of each stage, before the stage's max-pool -- the stage's final
features, the place SE and CBAM take in a plain (non-residual) network, and
the place the VGG tutorials put CBAM. Default stages: all five; non-local
only in stages 4 and 5 (28 x 28 and 14 x 14 for a 224 image, the resolutions
of the non-local paper's res3/res4; its memory grows with (H*W)^2). ECA uses
the adaptive kernel size (3, 5, 5, 5, 5 for 64-512 channels). The block's
variables live under that conv, e.g. ``vgg_16/conv5/conv5_3/CBAM/...``.

NOTE: tf-slim's VGG is called as is. The block goes in through the
``activation_fn`` of ``conv2d`` (an arg_scope around the call), which runs
inside the conv's scope: the wrapped activation applies the original one,
then the block when the scope is a stage's last conv. So the conv's end point
(``vgg_16/conv5/conv5_3``) is the block's output; the block's own end point
(``.../CBAM``) is the same tensor.
"""
import inspect

import tensorflow as tf
from tf_slim import layers
from tf_slim.nets import vgg as _tf_vgg
from tf_slim.ops.arg_scope import arg_scope
from tf_slim.ops.arg_scope import arg_scope_func_key
from tf_slim.ops.arg_scope import current_arg_scope

from slim_attention.nets import placement

tf1 = tf.compat.v1

vgg_arg_scope = _tf_vgg.vgg_arg_scope

CONVS_PER_STAGE = {'vgg_a': (1, 1, 2, 2, 2), 'vgg_16': (2, 2, 3, 3, 3),
                   'vgg_19': (2, 2, 4, 4, 4)}
"""Convs per stage of tf-slim's VGGs."""

STAGES = (1, 2, 3, 4, 5)
DEFAULT_STAGES = {'nl': (4, 5)}
"""Default stages where they differ from all five."""


__getattr__ = placement.delegate_to(_tf_vgg)


def last_convs(convs_per_stage, stages):
    """Scopes of the last conv of each stage, relative to the network's scope."""
    return ['conv%d/conv%d_%d' % (s, s, convs_per_stage[s - 1]) for s in stages]


def attention_activation(activation_fn, targets, layer):
    """``activation_fn``, then ``layer`` inside the conv scopes ending in ``targets``."""
    suffixes = tuple('/' + t for t in targets)

    def activation(net):
        if activation_fn is not None:
            net = activation_fn(net)
        name = tf1.get_variable_scope().name
        if name in targets or name.endswith(suffixes):
            net = layer(net, placement.inherited_outputs_collections(layers.conv2d))
        return net
    return activation


def _vgg(tf_vgg_fn, inputs, num_classes, is_training, dropout_keep_prob,
         spatial_squeeze, scope, attention_module, attention_params,
         attention_stages):
    name = placement.resolve_module(attention_module)
    if name is None:
        return tf_vgg_fn(inputs, num_classes, is_training, dropout_keep_prob,
                         spatial_squeeze, scope)
    params = placement.check_params(name, attention_params)
    stages = placement.check_stages(attention_stages, STAGES,
                                    DEFAULT_STAGES.get(name, STAGES))
    layer = placement.attention_layer(name, params, is_training)
    activation_fn = current_arg_scope().get(
        arg_scope_func_key(layers.conv2d), {}).get(
            'activation_fn',
            inspect.signature(layers.conv2d).parameters['activation_fn'].default)
    targets = last_convs(CONVS_PER_STAGE[tf_vgg_fn.__name__], stages)
    with arg_scope([layers.conv2d], activation_fn=attention_activation(
            activation_fn, targets, layer)):
        return tf_vgg_fn(inputs, num_classes, is_training, dropout_keep_prob,
                         spatial_squeeze, scope)


def attention_vgg(tf_vgg_fn):
    """``tf_vgg_fn`` (tf-slim's vgg_a, vgg_16 or vgg_19) with the attention arguments.

    Returns:
      ``<name>(inputs, num_classes=1000, is_training=True,
      dropout_keep_prob=0.5, spatial_squeeze=True, scope='<name>',
      attention_module=None, attention_params=None, attention_stages=None)``.
    """
    name = tf_vgg_fn.__name__

    def network(inputs, num_classes=1000, is_training=True,
                dropout_keep_prob=0.5, spatial_squeeze=True, scope=name,
                attention_module=None, attention_params=None,
                attention_stages=None):
        return _vgg(tf_vgg_fn, inputs, num_classes, is_training,
                    dropout_keep_prob, spatial_squeeze, scope, attention_module,
                    attention_params, attention_stages)

    network.__name__ = network.__qualname__ = name
    network.__doc__ = NETWORK_DOC % name
    network.default_image_size = 224
    return network


NETWORK_DOC = """tf-slim's %s, with attention after each stage's last conv.

    See tf-slim's function for the other arguments.

    Args:
      attention_module: None or 'se', 'cbam', 'sam', 'gc', 'eca', 'nl' (or
        'se_block', 'cbam_block').
      attention_params: optional dict of keyword arguments for the block.
      attention_stages: optional stages (1-5) to restrict the block to;
        default: all, 4-5 for nl.

    Returns:
      ``(net, end_points)`` as tf-slim's.

    Raises:
      ValueError: an unknown attention_module, attention_params key or stage.
      TypeError: attention_params is not a dict.
    """


vgg_a = attention_vgg(_tf_vgg.vgg_a)
vgg_16 = attention_vgg(_tf_vgg.vgg_16)
vgg_19 = attention_vgg(_tf_vgg.vgg_19)
vgg_d = vgg_16
vgg_e = vgg_19
