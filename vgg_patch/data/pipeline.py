"""The tf.data input pipeline: decode, resize, crop (and flip), batch, prefetch.

The pipeline is graph mode (``tf.compat.v1``): file lists enter through
placeholders (so they never become constants in the GraphDef) and an
initializable iterator. As a second line of defence after
:func:`vgg_patch.data.check_images`, it drops any file TensorFlow itself fails
to decode (``tf.data.Dataset.ignore_errors``); the training loop counts those
from the number of images each pass really delivered.
"""
import numpy as np

# Training crops come from the image resized so its shorter side is this much
# larger than the model size (the usual 256 -> 224 ratio).
RESIZE_RATIO = 256.0 / 224.0


def decode_and_resize(path, image_size, training, flip=True, seed=None):
    """Reads one image file and returns a float32 [size, size, 3] RGB in [0, 1].

    Training: resize the shorter side to ``image_size * 256/224``, take a random
    ``image_size`` crop, optionally flip left-right. Evaluation: same resize,
    central crop.

    Args:
      path: scalar string tensor.
      image_size: output height and width (Python int).
      training: Python bool, random crop/flip when True.
      flip: Python bool, random left-right flips when training.
      seed: op-level seed of the random crop and flip (None: unseeded).

    Returns:
      A float32 tensor of shape ``[image_size, image_size, 3]``.
    """
    import tensorflow as tf
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    target = float(max(image_size, int(round(image_size * RESIZE_RATIO))))
    scale = target / tf.reduce_min(shape)
    new_size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), image_size)
    image = tf.image.resize(image, new_size, method="bilinear", antialias=True)
    if training:
        image = tf.image.random_crop(image, [image_size, image_size, 3], seed=seed)
        if flip:
            image = tf.image.random_flip_left_right(
                image, seed=None if seed is None else seed + 1)
    else:
        top = (new_size[0] - image_size) // 2
        left = (new_size[1] - image_size) // 2
        image = tf.image.crop_to_bounding_box(image, top, left, image_size, image_size)
    image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape([image_size, image_size, 3])
    return image


class ImagePipeline(object):
    """A batched, prefetched, parallel-decoding input pipeline fed with file lists.

    Builds ops in the current default graph: placeholders ``paths`` and
    ``labels``, an initializable iterator, and ``images``/``labels_out`` from its
    ``get_next()`` (or use ``iterator.string_handle()`` with a feedable iterator).
    Call :meth:`initialize` with the file list of a pass (e.g. one epoch, in the
    order wanted) before reading it.

    Args:
      image_size: model input size.
      batch_size: images per batch (the last batch of a pass may be smaller).
      training: random crops and flips when True, central crops otherwise.
      flip: random left-right flips when training.
      num_parallel_calls: decode parallelism; default ``tf.data.AUTOTUNE``.
      seed: op-level seed of the random crops and flips (default 0; the graph
        seed, ``tf.compat.v1.set_random_seed``, completes it).
      name: name scope of the ops.
    """

    def __init__(self, image_size, batch_size, training, flip=True,
                 num_parallel_calls=None, seed=0, name="input"):
        import tensorflow as tf
        if int(image_size) < 1:
            raise ValueError("image_size must be a positive int, got %r" % (image_size,))
        if int(batch_size) < 1:
            raise ValueError("batch_size must be a positive int, got %r" % (batch_size,))
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        autotune = tf.data.AUTOTUNE
        with tf.compat.v1.name_scope(name):
            self.paths = tf.compat.v1.placeholder(tf.string, [None], name="paths")
            self.labels = tf.compat.v1.placeholder(tf.int64, [None], name="labels")
            dataset = tf.data.Dataset.from_tensor_slices((self.paths, self.labels))

            def _load(path, label):
                return (decode_and_resize(path, self.image_size, training, flip, seed),
                        label)

            dataset = dataset.map(_load, num_parallel_calls=num_parallel_calls or autotune)
            dataset = dataset.ignore_errors()
            dataset = dataset.batch(self.batch_size).prefetch(autotune)
            self.dataset = dataset
            self.iterator = tf.compat.v1.data.make_initializable_iterator(dataset)
            self.images, self.labels_out = self.iterator.get_next()

    def initialize(self, sess, paths, labels):
        """Starts a pass over ``paths``/``labels`` (in that order)."""
        sess.run(self.iterator.initializer,
                 {self.paths: np.asarray(paths, dtype=object).astype(bytes),
                  self.labels: np.asarray(labels, dtype=np.int64)})
