"""tf-slim's ResNet v1 with an ``attention_module`` argument.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", 2015.
The functions have tf-slim's names and signatures plus ``attention_module``
(None, 'se', 'cbam', 'sam', 'gc', 'eca', 'nl'; kobiso's 'se_block' and
'cbam_block' too), ``attention_params`` (a dict for the block) and
``attention_stages`` (1-based stages, block1 = 1); where the blocks go is
documented in :mod:`slim_attention.nets.resnet_utils`. Anything else
(``resnet_arg_scope``, ...) is tf-slim's own object.

With ``attention_module=None`` the network is exactly tf-slim's (variables,
names, end points), so model-zoo checkpoints restore as is; with attention,
every tf-slim variable keeps its name and the block's variables live under
its unit, e.g. ``resnet_v1_50/block1/unit_1/bottleneck_v1/CBAM/...``.

NOTE: :func:`bottleneck` recomposes tf-slim's bottleneck from tf-slim's own
layers (conv2d, conv2d_same, subsample) with the same scopes, because
tf-slim's gives no hook between its last conv and the addition. The network
generator itself is tf-slim's (``resnet_v1`` wraps it, see
:func:`slim_attention.nets.resnet_utils.attention_generator`).
"""
import tensorflow as tf
from tf_slim import layers
from tf_slim.layers import utils as slim_utils
from tf_slim.nets import resnet_v1 as _tf_resnet_v1
from tf_slim.ops.arg_scope import add_arg_scope

from slim_attention.nets import placement
from slim_attention.nets import resnet_utils

tf1 = tf.compat.v1

resnet_arg_scope = resnet_utils.resnet_arg_scope


__getattr__ = placement.delegate_to(_tf_resnet_v1)


@add_arg_scope
def bottleneck(inputs,
               depth,
               depth_bottleneck,
               stride,
               rate=1,
               outputs_collections=None,
               scope=None,
               attention_fn=None):
    """tf-slim's bottleneck_v1 with an optional attention layer.

    ``relu(shortcut + attention(BN(conv3(conv2(conv1(x))))))``: the attention
    sits on the residual branch after conv3 and its batch norm, before the
    addition; never on the shortcut. An arg_scope on tf-slim's bottleneck
    (``outputs_collections``) applies here too.

    Args:
      inputs: a tensor of size [batch, height, width, channels].
      depth: the depth of the unit's output.
      depth_bottleneck: the depth of the bottleneck layers.
      stride: the unit's stride.
      rate: an integer, rate for atrous convolution.
      outputs_collections: collection to add the unit's output to.
      scope: optional variable_scope (default 'bottleneck_v1').
      attention_fn: None or ``apply(net, outputs_collections)`` (see
        :func:`slim_attention.nets.placement.attention_layer`).

    Returns:
      The unit's output.
    """
    if outputs_collections is None:
        outputs_collections = placement.inherited_outputs_collections(
            _tf_resnet_v1.bottleneck)
    with tf1.variable_scope(scope, 'bottleneck_v1', [inputs]) as sc:
        depth_in = slim_utils.last_dimension(inputs.get_shape(), min_rank=4)
        if depth == depth_in:
            shortcut = resnet_utils.subsample(inputs, stride, 'shortcut')
        else:
            shortcut = layers.conv2d(inputs, depth, [1, 1], stride=stride,
                                     activation_fn=None, scope='shortcut')
        residual = layers.conv2d(inputs, depth_bottleneck, [1, 1], stride=1,
                                 scope='conv1')
        residual = resnet_utils.conv2d_same(residual, depth_bottleneck, 3,
                                            stride, rate=rate, scope='conv2')
        residual = layers.conv2d(residual, depth, [1, 1], stride=1,
                                 activation_fn=None, scope='conv3')
        if attention_fn is not None:
            residual = attention_fn(residual, outputs_collections)
        output = tf.nn.relu(shortcut + residual)
        return slim_utils.collect_named_outputs(outputs_collections, sc.name,
                                                output)


resnet_v1 = resnet_utils.attention_generator(
    _tf_resnet_v1.resnet_v1, (bottleneck, _tf_resnet_v1.bottleneck))


def resnet_v1_block(scope, base_depth, num_units, stride):
    """tf-slim's ``resnet_v1_block`` built on this module's :func:`bottleneck`."""
    return _tf_resnet_v1.resnet_v1_block(scope, base_depth, num_units,
                                         stride)._replace(unit_fn=bottleneck)


resnet_v1_50 = resnet_utils.depth_network(resnet_v1, resnet_v1_block, 50)
resnet_v1_101 = resnet_utils.depth_network(resnet_v1, resnet_v1_block, 101)
resnet_v1_152 = resnet_utils.depth_network(resnet_v1, resnet_v1_block, 152)
resnet_v1_200 = resnet_utils.depth_network(resnet_v1, resnet_v1_block, 200)
