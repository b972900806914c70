"""Contains a factory for building various image preprocessing functions."""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import tensorflow.compat.v1 as tf

slim = tf.contrib.slim


def _inception_style(image, output_height, output_width, is_training):
  """Scales to [-1, 1] and resizes; flips left-right when training."""
  image = tf.image.convert_image_dtype(image, dtype=tf.float32)
  image = tf.image.resize_images(image, [output_height, output_width])
  if is_training:
    image = tf.image.random_flip_left_right(image)
  return tf.multiply(tf.subtract(image, 0.5), 2.0)


def get_preprocessing(name, is_training=False):
  """Returns preprocessing_fn(image, height, width, **kwargs).

  Raises:
    ValueError: If Preprocessing `name` is not recognized.
  """
  preprocessing_fn_map = {
      'inception_v1': _inception_style,
      'inception_v3': _inception_style,
      'resnet_v1_50': _inception_style,
      'resnet_v1_101': _inception_style,
      'vgg_16': _inception_style,
  }
  if name not in preprocessing_fn_map:
    raise ValueError('Preprocessing name [%s] was not recognized' % name)

  def preprocessing_fn(image, output_height, output_width, **kwargs):
    return preprocessing_fn_map[name](
        image, output_height, output_width, is_training=is_training, **kwargs)

  return preprocessing_fn
