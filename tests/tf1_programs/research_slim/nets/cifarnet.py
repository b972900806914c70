"""Contains a variant of the CIFAR-10 model definition.

Written the way research/slim's nets are. Like NASNet's modules, it reads
``tf.contrib.framework`` at import time, which is what made a whole nets
factory fail to import on TF2 before ``install_contrib_alias()`` covered
``tf.contrib.framework``.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import tensorflow.compat.v1 as tf

arg_scope = tf.contrib.framework.arg_scope
add_arg_scope = tf.contrib.framework.add_arg_scope
slim = tf.contrib.slim

trunc_normal = lambda stddev: tf.truncated_normal_initializer(stddev=stddev)


@add_arg_scope
def _conv_pool(net, depth, scope):
  with tf.variable_scope(scope):
    net = slim.conv2d(net, depth, [5, 5], scope='conv')
    return slim.max_pool2d(net, [2, 2], 2, scope='pool')


def cifarnet(images, num_classes=10, is_training=False,
             dropout_keep_prob=0.5, scope='CifarNet'):
  """A small CIFAR-style network: two conv/pool stages and two fc layers."""
  end_points = {}
  with tf.variable_scope(scope, 'CifarNet', [images]):
    net = _conv_pool(images, 32, 'stage1')
    net = _conv_pool(net, 32, 'stage2')
    net = slim.flatten(net)
    net = slim.fully_connected(net, 64, scope='fc3')
    net = slim.dropout(net, dropout_keep_prob, is_training=is_training,
                       scope='dropout3')
    logits = slim.fully_connected(net, num_classes, activation_fn=None,
                                  weights_initializer=trunc_normal(1 / 64.0),
                                  scope='logits')
    end_points['Logits'] = logits
    end_points['Predictions'] = tf.nn.softmax(logits, name='Predictions')
  return logits, end_points
cifarnet.default_image_size = 32


def cifarnet_arg_scope(weight_decay=0.004):
  """Defines the default cifarnet argument scope."""
  with arg_scope([slim.conv2d, slim.fully_connected],
                 weights_initializer=trunc_normal(5e-2),
                 weights_regularizer=slim.l2_regularizer(weight_decay),
                 activation_fn=tf.nn.relu) as sc:
    return sc
