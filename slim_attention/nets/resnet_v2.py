"""tf-slim's ResNet v2 (pre-activation) with an ``attention_module`` argument.

He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks", 2016.
Everything as in :mod:`slim_attention.nets.resnet_v1` (arguments, placement,
names such as ``resnet_v2_50/block1/unit_1/bottleneck_v2/CBAM/...``), except
that a v2 unit's last conv has no batch norm: the block follows conv3 itself.
"""
import tensorflow as tf
from tf_slim import layers
from tf_slim.layers import utils as slim_utils
from tf_slim.nets import resnet_v2 as _tf_resnet_v2
from tf_slim.ops.arg_scope import add_arg_scope

from slim_attention.nets import placement
from slim_attention.nets import resnet_utils

tf1 = tf.compat.v1

resnet_arg_scope = resnet_utils.resnet_arg_scope


__getattr__ = placement.delegate_to(_tf_resnet_v2)


@add_arg_scope
def bottleneck(inputs,
               depth,
               depth_bottleneck,
               stride,
               rate=1,
               outputs_collections=None,
               scope=None,
               attention_fn=None):
    """tf-slim's bottleneck_v2 (pre-activation) with an optional attention layer.

    ``shortcut + attention(conv3(conv2(conv1(preact(x)))))``: the attention
    sits on the residual branch after conv3 (no batch norm in v2), before the
    addition; never on the shortcut. Arguments as
    :func:`slim_attention.nets.resnet_v1.bottleneck`.
    """
    if outputs_collections is None:
        outputs_collections = placement.inherited_outputs_collections(
            _tf_resnet_v2.bottleneck)
    with tf1.variable_scope(scope, 'bottleneck_v2', [inputs]) as sc:
        depth_in = slim_utils.last_dimension(inputs.get_shape(), min_rank=4)
        preact = layers.batch_norm(inputs, activation_fn=tf.nn.relu,
                                   scope='preact')
        if depth == depth_in:
            shortcut = resnet_utils.subsample(inputs, stride, 'shortcut')
        else:
            shortcut = layers.conv2d(preact, depth, [1, 1], stride=stride,
                                     normalizer_fn=None, activation_fn=None,
                                     scope='shortcut')
        residual = layers.conv2d(preact, depth_bottleneck, [1, 1], stride=1,
                                 scope='conv1')
        residual = resnet_utils.conv2d_same(residual, depth_bottleneck, 3,
                                            stride, rate=rate, scope='conv2')
        residual = layers.conv2d(residual, depth, [1, 1], stride=1,
                                 normalizer_fn=None, activation_fn=None,
                                 scope='conv3')
        if attention_fn is not None:
            residual = attention_fn(residual, outputs_collections)
        output = shortcut + residual
        return slim_utils.collect_named_outputs(outputs_collections, sc.name,
                                                output)


resnet_v2 = resnet_utils.attention_generator(
    _tf_resnet_v2.resnet_v2, (bottleneck, _tf_resnet_v2.bottleneck))


def resnet_v2_block(scope, base_depth, num_units, stride):
    """tf-slim's ``resnet_v2_block`` built on this module's :func:`bottleneck`."""
    return _tf_resnet_v2.resnet_v2_block(scope, base_depth, num_units,
                                         stride)._replace(unit_fn=bottleneck)


resnet_v2_50 = resnet_utils.depth_network(resnet_v2, resnet_v2_block, 50)
resnet_v2_101 = resnet_utils.depth_network(resnet_v2, resnet_v2_block, 101)
resnet_v2_152 = resnet_utils.depth_network(resnet_v2, resnet_v2_block, 152)
resnet_v2_200 = resnet_utils.depth_network(resnet_v2, resnet_v2_block, 200)
