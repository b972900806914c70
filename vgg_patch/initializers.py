"""Where :class:`vgg_patch.Vgg19`'s variables start: a weights file, or fresh.

The middle of the data path ``vgg19.npy -> variables -> graph``:

1. :class:`vgg_patch.weights.WeightsFile` parses the file safely without
   reading the weights (each array a :class:`vgg_patch.weights.LazyArray`);
2. :func:`check_file` and :func:`fc6_input_size` check it against the
   network before any op exists, so a file that does not fit fails in
   ``Vgg19()`` or ``build()`` with one ValueError line;
3. :func:`file_initializer` gives each variable an initializer whose tensor
   is a ``tf.numpy_function`` reading that one array from the file when the
   variable's initializer runs (in the process that built the graph, on the
   caller's device, also when the variable lives on a ps), into a 64-byte aligned buffer that
   TensorFlow wraps and the resource variable adopts without copying. No
   weight enters the GraphDef, and about one copy of the weights is in
   memory while they load (docs/benchmarks.md has the measurements).

Layers a file does not hold start from :func:`fresh_initializer`.
"""
import logging

import tensorflow as tf

from vgg_patch import _shapes
from vgg_patch import layout
from vgg_patch import weights as weights_lib

logger = logging.getLogger(__name__)

__all__ = ['check_file', 'fc6_input_size', 'check_block_used', 'initializer',
           'file_initializer', 'fresh_initializer']

# Unit of conv1_1's input (rgb * 255 - VGG_MEAN) for its fresh weights: half its range.
_INPUT_UNIT = 128.0


def check_file(wf, include_top, num_classes, attention):
    """Checks that ``wf`` holds every layer the network takes from it.

    Args:
      wf: the :class:`vgg_patch.weights.WeightsFile`.
      include_top: whether the network has fc6-fc8.
      num_classes: width of fc8.
      attention: the network's attention ('cbam' or None).

    Returns:
      True if fc8 comes from the file, False if it starts fresh (a file
      with ImageNet's 1000 classes and another ``num_classes``).

    Raises:
      WeightsFileError: a layer is missing or has the wrong shape.
    """
    for name, cin, cout in layout.CONV_LAYERS:
        wf.array(name, 0, (3, 3, cin, cout))
        wf.array(name, 1, (cout,))
    fc8_from_file = True
    if include_top:
        width = layout.FC_WIDTH
        fc6 = wf.layers.get('fc6', {}).get(0)
        # fc6's input width follows the input size; build() checks it against the input.
        in_size = (fc6.shape[0] if fc6 is not None and len(fc6.shape) == 2
                   and fc6.shape[0] % layout.POOL5_CHANNELS == 0
                   else layout.LAYER_SHAPES['fc6'][0][0])
        wf.array('fc6', 0, (in_size, width))
        wf.array('fc6', 1, (width,))
        wf.array('fc7', 0, (width, width))
        wf.array('fc7', 1, (width,))
        fc8_from_file = _fc8_in_file(wf, num_classes)
    if attention is not None and layout.ATTENTION_BLOCK_KEY not in wf.blocks:
        logger.info('%s holds no attention weights: the CBAM block (%s) starts fresh',
                    wf.path, layout.ATTENTION_BLOCK_KEY)
    if attention is None and wf.blocks:
        logger.info('%s holds attention weights (%s) that attention=None does not use',
                    wf.path, ', '.join(sorted(wf.blocks)))
    logger.info('%s: %s format, %d layers', wf.path, wf.format, len(wf.layers))
    return fc8_from_file


def _fc8_in_file(wf, num_classes):
    """True if fc8 comes from the file; False if it starts fresh (new classes)."""
    width, imagenet = layout.FC_WIDTH, layout.IMAGENET_CLASSES
    if 'fc8' not in wf.layers or 0 not in wf.layers['fc8']:
        wf.array('fc8', 0, (width, num_classes))  # raises: missing
    found = tuple(wf.layers['fc8'][0].shape)
    if num_classes != imagenet and found == (width, imagenet):
        logger.info('%s: fc8 has %d classes; num_classes=%d, so fc8 starts fresh '
                    'for retraining', wf.path, imagenet, num_classes)
        return False
    wf.array('fc8', 0, (width, num_classes))
    wf.array('fc8', 1, (num_classes,))
    return True


def fc6_input_size(wf, rgb):
    """Width of fc6's input (pool5's h * w * 512), checked against the file's fc6.

    Computed from ``rgb``'s static shape before any op exists (CBAM keeps
    pool5's shape).

    Args:
      wf: the :class:`vgg_patch.weights.WeightsFile`, or None.
      rgb: the network's input, [batch, height, width, 3].

    Raises:
      ValueError: rgb has no static height and width, or pool5 has another
        number of values than fc6 in ``wf`` takes.
    """
    _, height, width, _ = _shapes.dims(rgb)
    if height is None or width is None:
        raise ValueError(
            'Vgg19.build: the fully connected layers need a static input height '
            'and width; rgb has shape %s. Give the placeholder its size (224 x 224 '
            'for ImageNet weights) or use include_top=False' % _shapes.text(rgb))
    height, width = layout.pool5_size(height, width)
    in_size = height * width * layout.POOL5_CHANNELS
    if wf is None or 'fc6' not in wf.layers:
        return in_size
    expected = int(wf.layers['fc6'][0].shape[0])
    if expected != in_size:
        side = int(round((expected / layout.POOL5_CHANNELS) ** 0.5)) * 32
        raise ValueError(
            'Vgg19.build: rgb of shape %s gives pool5 [%d, %d, 512] (%d values) but '
            'fc6 in %s takes %d (a %dx%d input); feed [*, %d, %d, 3] images or use '
            'include_top=False for other sizes'
            % (_shapes.text(rgb), height, width, in_size, wf.path,
               expected, side, side, side, side))
    return in_size


def check_block_used(wf, block, names):
    """Checks that the network has every variable of attention block ``block`` in ``wf``.

    Args:
      wf: the :class:`vgg_patch.weights.WeightsFile`.
      block: the block's key in the file.
      names: the block's variable names (relative to its scope) in the network.

    Raises:
      WeightsFileError: the file's block has variables not in ``names``.
    """
    if block not in wf.blocks:
        return
    unused = set(wf.blocks[block]) - set(names)
    if unused:
        raise weights_lib.WeightsFileError(
            "%s: attention block '%s' has variables the network does not have: %s"
            % (wf.path, block, ', '.join(sorted(unused))))


def initializer(wf, key, shape, fresh):
    """The initializer of the variable ``key``: ``wf``'s array, or ``fresh``.

    Args:
      wf: the :class:`vgg_patch.weights.WeightsFile`, or None (fresh).
      key: ``(layer, 0 | 1)``, or ``(block, name within the block)`` for an
        attention block's variable (fresh when ``wf`` has no such block).
      shape: the variable's shape, checked against the file's array.
      fresh: the initializer used when the file does not hold ``key``.

    Returns:
      :func:`file_initializer` of the file's array, or ``fresh``.

    Raises:
      WeightsFileError: the file's array is missing or has another shape.
    """
    name, index = key
    if wf is None or (name == layout.ATTENTION_BLOCK_KEY and name not in wf.blocks):
        return fresh
    if name == layout.ATTENTION_BLOCK_KEY:
        return file_initializer(wf.block_array(name, index, shape))
    return file_initializer(wf.array(name, index, shape))


def file_initializer(lazy):
    """An initializer whose tensor reads ``lazy`` (a LazyArray) from its file when it runs.

    In a graph, the read op is made here, on the device the caller's
    ``tf.device`` scope gives an op (outside any control flow), and the
    initializer hands that tensor to the variable: a variable placed on a ps
    (``replica_device_setter``) is then assigned from the worker process that
    built the graph and holds the op's Python callback, instead of the op
    being colocated with the variable in a process that has no such callback.
    Executing eagerly, the initializer reads the file when it is called.
    """
    with tf.compat.v1.init_scope():
        value = None if tf.executing_eagerly() else _read_op(lazy)

    def initializer(shape, dtype=tf.float32, partition_info=None):
        del partition_info
        shape = _shapes.dims(shape)
        if shape != list(lazy.shape):
            raise ValueError('initializer for %s asked for shape %s' % (lazy, shape))
        if tf.as_dtype(dtype) != tf.float32:
            raise TypeError('weights from %s are float32, variable asked for %s'
                            % (lazy.path, dtype))
        return _read_op(lazy) if value is None else value

    return initializer


def _read_op(lazy):
    """A float32 tensor of ``lazy``'s shape, read from its file when it runs."""
    value = tf.numpy_function(lazy.read, [], tf.float32, stateful=True, name='read_npy')
    value.set_shape(lazy.shape)
    return value


def fresh_initializer(name, index):
    """The initializer of layer ``name``'s weights (index 0) or biases (index 1)
    when no file holds them: He-uniform weights, zero biases.

    The weights' variance scale (fan_in) is He's 2 for the ReLU layers and 1
    for fc8 (the logits), as if each layer's input had unit scale. conv1_1's
    input is tensorflow-vgg's ``rgb * 255`` minus ``VGG_MEAN``, far from unit
    scale, so its scale also divides by ``_INPUT_UNIT ** 2``: otherwise every
    layer carries that factor, the first logits are large and the first
    training step diverges (README, "vgg19-cbam-train", has the measurements).
    """
    if index != 0:
        return tf.compat.v1.zeros_initializer()
    if name == 'conv1_1':
        scale = 2.0 / _INPUT_UNIT ** 2
    else:
        scale = 1.0 if name == 'fc8' else 2.0
    return tf.compat.v1.variance_scaling_initializer(
        scale=scale, mode='fan_in', distribution='uniform')
