"""A small convnet written against TF1's tf.contrib names, as TF1 code was.

Like research/slim's NASNet, it reads ``tf.contrib.framework.arg_scope`` at
module level, so it must be imported after
``slim_attention.install_contrib_alias()``.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import numpy as np
import tensorflow.compat.v1 as tf

arg_scope = tf.contrib.framework.arg_scope
add_arg_scope = tf.contrib.framework.add_arg_scope

NUM_CLASSES = 2
IMAGE_SIZE = 8


def make_data(num_examples, seed):
  """Images whose top (class 0) or bottom (class 1) half is bright, plus noise."""
  rng = np.random.RandomState(seed)
  labels = rng.randint(0, NUM_CLASSES, size=num_examples).astype(np.int64)
  images = rng.normal(0.0, 0.3, size=(num_examples, IMAGE_SIZE, IMAGE_SIZE, 1))
  half = IMAGE_SIZE // 2
  images[labels == 0, :half] += 1.0
  images[labels == 1, half:] += 1.0
  return images.astype(np.float32), labels


def net_arg_scope(weight_decay=1e-4, is_training=True):
  """Initializer, regularizer and batch norm for every layer of `net`."""
  batch_norm_params = {'decay': 0.9, 'is_training': is_training}
  with arg_scope([tf.contrib.layers.conv2d, tf.contrib.layers.fully_connected],
                 weights_initializer=tf.contrib.layers.variance_scaling_initializer(),
                 weights_regularizer=tf.contrib.layers.l2_regularizer(weight_decay)):
    with arg_scope([tf.contrib.layers.conv2d], padding='SAME',
                   normalizer_fn=tf.contrib.layers.batch_norm,
                   normalizer_params=batch_norm_params):
      with arg_scope([tf.contrib.layers.dropout], is_training=is_training) as sc:
        return sc


@add_arg_scope
def logits_layer(net, num_classes, scope=None):
  """The classifier: a learned temperature times a linear layer."""
  with tf.variable_scope(scope, 'Logits', [net]):
    temperature = tf.contrib.framework.model_variable(
        'temperature', shape=[], initializer=tf.ones_initializer())
    logits = tf.contrib.layers.fully_connected(net, num_classes,
                                               activation_fn=None, scope='fc')
    return temperature * logits


def net(images, num_classes=NUM_CLASSES, scope='Net'):
  with tf.variable_scope(scope, 'Net', [images]):
    net = tf.contrib.layers.conv2d(images, 8, [3, 3], scope='conv1')
    net = tf.contrib.layers.max_pool2d(net, [2, 2], scope='pool1')
    net = tf.contrib.layers.flatten(net)
    net = tf.contrib.layers.dropout(net, keep_prob=0.9, scope='dropout')
    tf.contrib.layers.summarize_activation(net)
    return logits_layer(net, num_classes)
