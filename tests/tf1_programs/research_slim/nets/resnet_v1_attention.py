"""ResNet V1 with an attention module in every bottleneck.

As in the CBAM-tensorflow-slim fork of research/slim: the bottleneck is
tf-slim's bottleneck_v1 with `attention_module` ('se_block' or 'cbam_block')
applied to the residual branch after conv3 and its batch norm, before the
addition with the shortcut. The rest (stem, blocks, pooling, logits) is
tf-slim's own resnet_v1, so the variable names are those of resnet_v1_50 plus
`.../bottleneck_v1/cbam_block/...`.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import tensorflow.compat.v1 as tf
from tensorflow.contrib.slim.nets import resnet_utils
from tensorflow.contrib.slim.nets import resnet_v1

slim = tf.contrib.slim

resnet_arg_scope = resnet_utils.resnet_arg_scope


def attention(inputs, attention_module, is_training, scope):
  if attention_module == 'se_block':
    return slim.squeeze_and_excitation(inputs, scope=scope)
  if attention_module == 'cbam_block':
    return slim.convolutional_block_attention_module(
        inputs, is_training=is_training, scope=scope)
  raise ValueError("attention_module must be None, 'se_block' or 'cbam_block', "
                   "got %r" % (attention_module,))


@slim.add_arg_scope
def bottleneck(inputs, depth, depth_bottleneck, stride, rate=1,
               outputs_collections=None, scope=None, attention_module=None,
               is_training=True):
  """Bottleneck residual unit variant with BN after convolutions."""
  with tf.variable_scope(scope, 'bottleneck_v1', [inputs]) as sc:
    depth_in = slim.utils.last_dimension(inputs.get_shape(), min_rank=4)
    if depth == depth_in:
      shortcut = resnet_utils.subsample(inputs, stride, 'shortcut')
    else:
      shortcut = slim.conv2d(inputs, depth, [1, 1], stride=stride,
                             activation_fn=None, scope='shortcut')

    residual = slim.conv2d(inputs, depth_bottleneck, [1, 1], stride=1,
                           scope='conv1')
    residual = resnet_utils.conv2d_same(residual, depth_bottleneck, 3, stride,
                                        rate=rate, scope='conv2')
    residual = slim.conv2d(residual, depth, [1, 1], stride=1,
                           activation_fn=None, scope='conv3')

    if attention_module:
      residual = attention(residual, attention_module, is_training,
                           attention_module)

    output = tf.nn.relu(shortcut + residual)
    return slim.utils.collect_named_outputs(outputs_collections, sc.name,
                                            output)


def resnet_v1_block(scope, base_depth, num_units, stride, attention_module):
  unit = {'depth': base_depth * 4, 'depth_bottleneck': base_depth,
          'attention_module': attention_module}
  return resnet_utils.Block(scope, bottleneck, [dict(unit, stride=1)] * (
      num_units - 1) + [dict(unit, stride=stride)])


def resnet_v1_50(inputs,
                 num_classes=None,
                 is_training=True,
                 global_pool=True,
                 output_stride=None,
                 spatial_squeeze=True,
                 reuse=None,
                 scope='resnet_v1_50',
                 attention_module=None):
  """ResNet-50 model of [1], with `attention_module` in every bottleneck."""
  blocks = [
      resnet_v1_block('block1', 64, 3, 2, attention_module),
      resnet_v1_block('block2', 128, 4, 2, attention_module),
      resnet_v1_block('block3', 256, 6, 2, attention_module),
      resnet_v1_block('block4', 512, 3, 1, attention_module),
  ]
  with slim.arg_scope([bottleneck], is_training=is_training):
    net, end_points = resnet_v1.resnet_v1(
        inputs, blocks, num_classes, is_training, global_pool=global_pool,
        output_stride=output_stride, include_root_block=True, reuse=reuse,
        scope=scope)
  # tf.contrib.slim's resnet_v1 returns [N, 1, 1, num_classes] logits; the
  # later research/slim version squeezes them (spatial_squeeze=True).
  if num_classes is not None and global_pool and spatial_squeeze:
    net = tf.squeeze(net, [1, 2], name='SpatialSqueeze')
    end_points[scope + '/spatial_squeeze'] = net
  return net, end_points
resnet_v1_50.default_image_size = 224
