"""Contains a factory for building various models."""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import functools

import tensorflow.compat.v1 as tf
from tensorflow.contrib.slim.nets import inception
from tensorflow.contrib.slim.nets import resnet_v1
from tensorflow.contrib.slim.nets import vgg

from nets import cifarnet

slim = tf.contrib.slim


def squeezed(func):
  """tf.contrib.slim's resnet_v1_* return [N, 1, 1, num_classes] logits; the
  later research/slim versions squeeze them (spatial_squeeze=True)."""
  @functools.wraps(func)
  def network(images, num_classes=None, **kwargs):
    net, end_points = func(images, num_classes=num_classes, **kwargs)
    if num_classes:
      net = tf.squeeze(net, [1, 2], name='SpatialSqueeze')
    return net, end_points
  return network


networks_map = {
    'cifarnet': cifarnet.cifarnet,
    'vgg_16': vgg.vgg_16,
    'inception_v1': inception.inception_v1,
    'inception_v3': inception.inception_v3,
    'resnet_v1_50': squeezed(resnet_v1.resnet_v1_50),
    'resnet_v1_101': squeezed(resnet_v1.resnet_v1_101),
}

arg_scopes_map = {
    'cifarnet': cifarnet.cifarnet_arg_scope,
    'vgg_16': vgg.vgg_arg_scope,
    'inception_v1': inception.inception_v3_arg_scope,
    'inception_v3': inception.inception_v3_arg_scope,
    'resnet_v1_50': resnet_v1.resnet_arg_scope,
    'resnet_v1_101': resnet_v1.resnet_arg_scope,
}

# Networks that take --attention_module (slim.nets' ResNets and VGGs take
# attention_module=..., kobiso's 'se_block' and 'cbam_block' included).
attention_networks = {'resnet_v1_50', 'resnet_v1_101', 'vgg_16'}


def get_network_fn(name, num_classes, weight_decay=0.0, is_training=False,
                   attention_module=None):
  """Returns a network_fn such as `logits, end_points = network_fn(images)`.

  Raises:
    ValueError: If network `name` is not recognized, or an attention module is
      asked of a network without one.
  """
  if name not in networks_map:
    raise ValueError('Name of network unknown %s' % name)
  if attention_module and name not in attention_networks:
    raise ValueError('Network %s has no attention_module' % name)
  func = networks_map[name]

  @functools.wraps(func)
  def network_fn(images, **kwargs):
    if attention_module:
      kwargs['attention_module'] = attention_module
    arg_scope = arg_scopes_map[name](weight_decay=weight_decay)
    with slim.arg_scope(arg_scope):
      return func(images, num_classes=num_classes, is_training=is_training,
                  **kwargs)
  if hasattr(func, 'default_image_size'):
    network_fn.default_image_size = func.default_image_size

  return network_fn
