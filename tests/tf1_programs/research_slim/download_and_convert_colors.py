r"""Writes the tiny `colors` dataset as TFRecords (research/slim style).

Each image is a 32x32 PNG (or JPEG) filled with noise around one of three
base colours; the label is the colour. Nothing is downloaded: the images are
generated, then encoded with TensorFlow's own encoder in a session, as
download_and_convert_flowers.py decodes and re-encodes its JPEGs.

Usage:
  python download_and_convert_colors.py --dataset_dir=/tmp/colors
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os

import numpy as np
import tensorflow.compat.v1 as tf
tf.disable_v2_behavior()

import slim_attention  # noqa: E402
slim_attention.install_contrib_alias()

from datasets import colors  # noqa: E402
from datasets import dataset_utils  # noqa: E402

tf.app.flags.DEFINE_string('dataset_dir', None,
                           'The directory where the TFRecords are written.')
tf.app.flags.DEFINE_string('image_format', 'png', 'png or jpeg.')
tf.app.flags.DEFINE_integer('image_size', 32, 'Height and width of the images.')
tf.app.flags.DEFINE_integer('random_seed', 0, 'Seed of the generated pixels.')
tf.app.flags.DEFINE_integer('num_shards', 2, 'TFRecord files per split.')

FLAGS = tf.app.flags.FLAGS

_CLASS_NAMES = ['red', 'green', 'blue']


class ImageCoder(object):
  """Encodes uint8 images with TensorFlow in a session of its own."""

  def __init__(self, image_format):
    self._graph = tf.Graph()
    with self._graph.as_default():
      self._image = tf.placeholder(dtype=tf.uint8, shape=[None, None, 3])
      if image_format == 'png':
        self._encoded = tf.image.encode_png(self._image)
      else:
        self._encoded = tf.image.encode_jpeg(self._image, quality=95)
    self._sess = tf.Session(graph=self._graph)

  def encode(self, image):
    return self._sess.run(self._encoded, feed_dict={self._image: image})


def _get_dataset_filename(dataset_dir, split_name, shard_id, num_shards):
  output_filename = 'colors_%s_%05d-of-%05d.tfrecord' % (
      split_name, shard_id, num_shards)
  return os.path.join(dataset_dir, output_filename)


def _generate_image(rng, class_id, size):
  image = rng.uniform(0, 80, size=(size, size, 3))
  image[:, :, class_id] += 150
  return np.clip(image, 0, 255).astype(np.uint8)


def _convert_dataset(split_name, dataset_dir, coder, rng):
  num_images = colors.SPLITS_TO_SIZES[split_name]
  per_shard = int(np.ceil(num_images / float(FLAGS.num_shards)))
  for shard_id in range(FLAGS.num_shards):
    filename = _get_dataset_filename(dataset_dir, split_name, shard_id,
                                     FLAGS.num_shards)
    with tf.python_io.TFRecordWriter(filename) as writer:
      for i in range(shard_id * per_shard,
                     min(num_images, (shard_id + 1) * per_shard)):
        class_id = i % len(_CLASS_NAMES)
        image = _generate_image(rng, class_id, FLAGS.image_size)
        example = dataset_utils.image_to_tfexample(
            coder.encode(image), FLAGS.image_format.encode(),
            FLAGS.image_size, FLAGS.image_size, class_id)
        writer.write(example.SerializeToString())


def run(dataset_dir):
  if not tf.gfile.Exists(dataset_dir):
    tf.gfile.MakeDirs(dataset_dir)
  rng = np.random.RandomState(FLAGS.random_seed)
  coder = ImageCoder(FLAGS.image_format)
  for split_name in sorted(colors.SPLITS_TO_SIZES):
    _convert_dataset(split_name, dataset_dir, coder, rng)
  dataset_utils.write_label_file(dict(enumerate(_CLASS_NAMES)), dataset_dir)
  print('\nFinished converting the colors dataset!')


def main(_):
  if not FLAGS.dataset_dir:
    raise ValueError('You must supply the dataset directory with --dataset_dir')
  run(FLAGS.dataset_dir)


if __name__ == '__main__':
  tf.app.run()
