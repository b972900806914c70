"""VGG19's layout, in one place: the layer table, the weights file's shapes,
the parameter count, and synthetic weights files.

:class:`vgg_patch.Vgg19`, the tests and the benchmarks all read the network's
shape from here (Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", https://arxiv.org/abs/1409.1556, configuration
E; in the layout of tensorflow-vgg's ``vgg19.npy``,
https://github.com/machrisaa/tensorflow-vgg).

A weights file holds ``{layer: [weights, biases]}`` for the layers of
:data:`LAYER_SHAPES`, in that order: 3x3 convolution filters
``[3, 3, in, out]`` and fully connected matrices ``[in, out]`` (fc6's input is
pool5 flattened in NHWC order, 7 x 7 x 512 for 224 x 224 images); files
written by ``Vgg19.save_npy`` also hold ``{ATTENTION_BLOCK_KEY: {variable
name within the block: array}}``.

This module does not import TensorFlow.
"""
import numpy as np

from vgg_patch import weights as weights_lib

__all__ = ['VGG_MEAN', 'CONV_LAYERS', 'FC_LAYERS', 'WINOGRAD_LAYERS', 'ATTENTION_BLOCK_KEY',
           'FC_WIDTH',
           'POOL5_CHANNELS', 'IMAGENET_CLASSES', 'IMAGENET_SIZE', 'KERAS_NAMES',
           'pool5_size', 'layer_shapes', 'LAYER_SHAPES', 'param_count', 'PARAMS',
           'synthetic_array', 'synthetic_layer', 'synthetic_weights', 'write_synthetic_npy']

#: tensorflow-vgg's BGR mean, subtracted after scaling RGB [0, 1] by 255.
VGG_MEAN = [103.939, 116.779, 123.68]

#: (name, in_channels, out_channels) of VGG19's sixteen 3x3 convolutions.
CONV_LAYERS = (
    ('conv1_1', 3, 64), ('conv1_2', 64, 64),
    ('conv2_1', 64, 128), ('conv2_2', 128, 128),
    ('conv3_1', 128, 256), ('conv3_2', 256, 256), ('conv3_3', 256, 256), ('conv3_4', 256, 256),
    ('conv4_1', 256, 512), ('conv4_2', 512, 512), ('conv4_3', 512, 512), ('conv4_4', 512, 512),
    ('conv5_1', 512, 512), ('conv5_2', 512, 512), ('conv5_3', 512, 512), ('conv5_4', 512, 512),
)

#: Names of the fully connected layers (their shapes: :func:`layer_shapes`).
FC_LAYERS = ('fc6', 'fc7', 'fc8')

#: The convolutions ``Vgg19(winograd=True)`` computes by Winograd F(2x2, 3x3):
#: stages 3-5. Stages 1-2 (64-128 channels at full and half resolution) stay
#: direct: there the transforms' passes over the large activations cost more
#: than they save (docs/benchmarks.md).
WINOGRAD_LAYERS = tuple(name for name, _, _ in CONV_LAYERS if name[4] in '345')

#: Key of the CBAM block's variables in files written by ``Vgg19.save_npy``.
ATTENTION_BLOCK_KEY = 'cbam_0'

#: Width of fc6 and fc7.
FC_WIDTH = 4096

#: Channels of pool5 (conv5_4's output).
POOL5_CHANNELS = CONV_LAYERS[-1][2]

#: Width of fc8 in the ImageNet file.
IMAGENET_CLASSES = 1000

#: Input height and width the ImageNet file's fc6 is made for.
IMAGENET_SIZE = 224

#: tensorflow-vgg layer name -> Keras' ``applications.VGG19`` layer name.
KERAS_NAMES = dict(
    [(name, 'block%s_conv%s' % (name[4], name[6])) for name, _, _ in CONV_LAYERS]
    + [('fc6', 'fc1'), ('fc7', 'fc2'), ('fc8', 'predictions')])


def pool5_size(height, width):
    """pool5's (height, width) for an input of ``height`` x ``width``: five 2x2
    'SAME' poolings, ``ceil(H / 32) x ceil(W / 32)``."""
    for _ in range(5):
        height, width = -(-height // 2), -(-width // 2)
    return height, width


def layer_shapes(fc6_input=None, num_classes=IMAGENET_CLASSES):
    """``{layer: (weights shape, biases shape)}`` in the file's order.

    Args:
      fc6_input: width of fc6's input (pool5 flattened); None for the
        ImageNet file's (7 x 7 x 512).
      num_classes: width of fc8.

    Returns:
      A dict of tuples.
    """
    if fc6_input is None:
        side = pool5_size(IMAGENET_SIZE, IMAGENET_SIZE)[0]
        fc6_input = side * side * POOL5_CHANNELS
    shapes = {name: ((3, 3, cin, cout), (cout,)) for name, cin, cout in CONV_LAYERS}
    for name, cin, cout in zip(FC_LAYERS, (fc6_input, FC_WIDTH, FC_WIDTH),
                               (FC_WIDTH, FC_WIDTH, num_classes)):
        shapes[name] = ((cin, cout), (cout,))
    return shapes


#: tensorflow-vgg's ``vgg19.npy``: ``{layer: (weights shape, biases shape)}``.
LAYER_SHAPES = layer_shapes()


def param_count(shapes=None):
    """Number of values in the layers of ``shapes`` (:data:`LAYER_SHAPES` by default)."""
    shapes = LAYER_SHAPES if shapes is None else shapes
    return sum(int(np.prod(shape)) for pair in shapes.values() for shape in pair)


#: Parameters in tensorflow-vgg's ``vgg19.npy`` (143,667,240).
PARAMS = param_count()


def synthetic_array(name, index, seed=0, dtype=np.float32, shapes=None):
    """Layer ``name``'s synthetic weights (index 0) or biases (index 1).

    Weights are He-normal, N(0, 2 / fan_in), so activations stay finite
    through all 19 layers; biases are N(0, 0.01^2). Deterministic per
    (name, index, seed), so a file can be written one array at a time.

    Args:
      name: layer name, a key of ``shapes``.
      index: 0 for weights, 1 for biases.
      seed: random seed.
      dtype: the array's dtype.
      shapes: ``{layer: (weights shape, biases shape)}``;
        :data:`LAYER_SHAPES` by default.

    Returns:
      The array.
    """
    shapes = LAYER_SHAPES if shapes is None else shapes
    shape = shapes[name][index]
    rng = np.random.default_rng([seed, index, len(name)] + [ord(c) for c in name])
    out = rng.standard_normal(shape, dtype=np.float32)
    if index == 0:
        out *= np.float32(np.sqrt(2.0 / int(np.prod(shape[:-1]))))
    else:
        out *= np.float32(0.01)
    return out.astype(dtype, copy=False)


def synthetic_layer(name, seed=0, dtype=np.float32, shapes=None):
    """``[weights, biases]`` of layer ``name`` (:func:`synthetic_array`)."""
    return [synthetic_array(name, i, seed, dtype, shapes) for i in (0, 1)]


def synthetic_weights(seed=0, dtype=np.float32, shapes=None):
    """``{layer: [weights, biases]}`` for every layer of ``shapes`` (:func:`synthetic_array`)."""
    shapes = LAYER_SHAPES if shapes is None else shapes
    return {name: synthetic_layer(name, seed, dtype, shapes) for name in shapes}


def write_synthetic_npy(path, seed=0, shapes=None):
    """Writes a synthetic weights file in ``vgg19.npy``'s layout, ``{layer: [W, b]}``.

    Arrays are made and written one at a time (:func:`vgg_patch.weights.save_weights`),
    so the full-size file needs about one layer's memory.
    ``np.load(path, allow_pickle=True).item()`` and :class:`vgg_patch.Vgg19` read it.

    Args:
      path: destination, written as given.
      seed: random seed (:func:`synthetic_array`).
      shapes: ``{layer: (weights shape, biases shape)}``;
        :data:`LAYER_SHAPES` by default.

    Returns:
      ``path``.
    """
    shapes = LAYER_SHAPES if shapes is None else shapes
    tree = {name: [(lambda n=name, i=i: synthetic_array(n, i, seed, shapes=shapes))
                   for i in (0, 1)] for name in shapes}
    return weights_lib.save_weights(path, tree)
