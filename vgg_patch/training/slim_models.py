"""The slim_attention.nets networks ``slim-attention-train`` knows, by name.

One :class:`ModelSpec` per ``--model``: where the network function lives, its
preprocessing, the scope of its classifier, the smallest input it accepts and
the size of the built-in demo. :func:`estimate_memory` gives the trainer's
memory estimate from the layer table alone (no graph: building ResNet-200
just to count it would take longer than checking the sizes should).

No TensorFlow here.
"""
import collections

ModelSpec = collections.namedtuple(
    "ModelSpec", ["name", "family", "depth", "preprocessing", "logits_scope",
                  "min_image_size", "demo_image_size", "scope", "max_image_size"],
    defaults=(None, None))
ModelSpec.__doc__ = """A network ``slim-attention-train`` trains.

Attributes:
  name: the ``--model`` name, also the network's variable scope unless
    ``scope`` says otherwise (``resnet_v1_50``, ``vgg_16``).
  family: the module of :mod:`slim_attention.nets` (``resnet_v1``,
    ``resnet_v2``, ``vgg``, ``inception``).
  depth: ResNet depth (50, 101, 152, 200), the VGG letter/number, or the
    Inception version (1, 2, 3).
  preprocessing: ``'mean'`` (RGB x 255 minus the ImageNet means, as tf-slim's
    vgg_preprocessing for VGG and ResNet v1) or ``'inception'`` (scaled to
    [-1, 1], as tf-slim's inception_preprocessing for ResNet v2 and Inception).
  logits_scope: the classifier's scope under the network's (left fresh by
    ``--checkpoint`` when its class count differs).
  min_image_size: the smallest input side the network accepts.
  demo_image_size: the built-in demo's input side.
  scope: the network's variable scope when it is not ``name``
    (``InceptionV3``: the model zoo's names).
  max_image_size: the largest input side, when there is one.
"""

# tf-slim's Inceptions: (min side, demo side, largest side). v1 ends in a 7 x 7
# VALID average pool over its stride-32 output (193-224 px); v2 pools what is
# left; v3's stem is VALID (75 px leaves Mixed_7c 1 x 1; the trainer builds it
# without the auxiliary classifier, which alone needs 107).
INCEPTION_SIZES = {1: (193, 224, 224), 2: (32, 64, None), 3: (75, 75, None)}
INCEPTION_SCOPES = {1: "InceptionV1", 2: "InceptionV2", 3: "InceptionV3"}
NETWORK_KWARGS = {"inception_v3": {"create_aux_logits": False}}
"""Arguments the trainer gives a network besides tf-slim's defaults."""
# tf-slim's Inceptions' parameters, classifier left out (counted from tf-slim's
# graphs; the classifier is 1024, 1024, 2048 wide), and the floats their
# convolutions (x 2, with their norms), pools and concatenations output per
# image at 224 px (other sides: scaled by the area).
INCEPTION_COUNTS = {1: (5592624, 1024, 9106402), 2: (10153336, 1024, 9960962),
                    3: (21768352, 2048, 11935746)}

# ImageNet's RGB means on 0-255, subtracted by tf-slim's vgg_preprocessing.
IMAGENET_MEANS = (123.68, 116.78, 103.94)

RESNET_UNITS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3),
                200: (3, 24, 36, 3)}
VGG_CONVS = {"a": (1, 1, 2, 2, 2), "16": (2, 2, 3, 3, 3), "19": (2, 2, 4, 4, 4)}
VGG_WIDTHS = (64, 128, 256, 512, 512)


def _models():
    models = collections.OrderedDict()
    for family, prep in (("resnet_v1", "mean"), ("resnet_v2", "inception")):
        for depth in sorted(RESNET_UNITS):
            name = "%s_%d" % (family, depth)
            # Overall stride 32: 32 px leaves block4 1 x 1; the demo's 64 px
            # leaves 2 x 2 there and 4 x 4 in block3.
            models[name] = ModelSpec(name, family, depth, prep, "logits", 32, 64)
    for depth in ("a", "16", "19"):
        name = "vgg_%s" % depth
        # fc6 is a 7 x 7 VALID convolution over pool5 (five 2 x 2 VALID pools):
        # tf-slim's VGG needs 224 px.
        models[name] = ModelSpec(name, "vgg", depth, "mean", "fc8", 224, 224)
    for version, (low, demo, high) in sorted(INCEPTION_SIZES.items()):
        name = "inception_v%d" % version
        models[name] = ModelSpec(name, "inception", version, "inception", "Logits",
                                 low, demo, INCEPTION_SCOPES[version], high)
    return models


def network_scope(spec):
    """The variable scope of the network of ``spec``."""
    return spec.scope or spec.name


MODELS = _models()
"""``--model`` name -> :class:`ModelSpec`, in ``--help`` order."""


def get_spec(model):
    """The :class:`ModelSpec` of ``model``.

    Raises:
      ValueError: ``model`` is not a name of :data:`MODELS` (the message lists them).
    """
    if model not in MODELS:
        raise ValueError("model must be one of %s, got %r" % (", ".join(MODELS), model))
    return MODELS[model]


def check_image_size(model, image_size):
    """Refuses an input side the network cannot take.

    A ResNet takes any side from ``min_image_size`` (32: block4 is 1 x 1
    there). tf-slim's VGG ends in fc6, a 7 x 7 VALID convolution over pool5,
    and squeezes its output to [N, classes]: pool5 must be exactly 7 x 7, so
    the side must lie in 224-255.

    Raises:
      ValueError: the side does not fit (the message says which sides do).
    """
    spec = get_spec(model)
    if spec.family == "vgg":
        if image_size // 32 != 7:
            raise ValueError("%s needs an image size of 224-255 (its fc6 is a 7x7 VALID "
                             "convolution over a 7x7 pool5), got %d" % (model, image_size))
    elif spec.max_image_size and not spec.min_image_size <= image_size <= spec.max_image_size:
        raise ValueError("%s needs an image size of %d-%d, got %d"
                         % (model, spec.min_image_size, spec.max_image_size, image_size))
    elif image_size < spec.min_image_size:
        raise ValueError("%s needs an image size of at least %d (overall stride 32), "
                         "got %d" % (model, spec.min_image_size, image_size))


def _resnet_counts(spec, image_size, num_classes):
    """``(parameters, activations per image)`` of a ResNet, attention left out."""
    side = -(-image_size // 4)  # conv1 (stride 2), then the 3x3 max pool (stride 2)
    params = 7 * 7 * 3 * 64 + 2 * 64
    activations = 64 * (4 * side * side + side * side)  # conv1 (+ its norm), pool1
    depth_in = 64
    for stage, units in enumerate(RESNET_UNITS[spec.depth]):
        base = 64 * 2 ** stage
        for unit in range(units):
            if depth_in != 4 * base:  # a projection shortcut
                params += depth_in * 4 * base + 2 * 4 * base
                activations += side * side * 4 * base
            params += (depth_in * base + 9 * base * base + base * 4 * base
                       + 2 * (base + base + 4 * base))
            activations += side * side * (2 * 2 * base + 3 * 4 * base)
            if unit == units - 1 and stage < 3:  # tf-slim strides the last unit
                side = -(-side // 2)
            depth_in = 4 * base
    return params + depth_in * num_classes + num_classes, activations


def _vgg_counts(spec, num_classes):
    """``(parameters, activations per image)`` of a VGG at 224 px (fc6 fixes it)."""
    params = activations = 0
    side, depth_in = 224, 3
    for convs, width in zip(VGG_CONVS[spec.depth], VGG_WIDTHS):
        for _ in range(convs):
            params += 9 * depth_in * width + width
            activations += 2 * side * side * width  # the conv and its relu
            depth_in = width
        side //= 2
        activations += side * side * width
    params += 7 * 7 * 512 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * num_classes
    return params + num_classes, activations + 2 * 4096 + num_classes


def estimate_memory(model, image_size, batch_size, num_classes, optimizer):
    """A lower-bound estimate of what training ``model`` needs, without building it.

    Counts the network's trained parameters from its layer table (attention
    blocks left out: a lower bound) and float32 bytes for the weights, their
    gradients and the optimizer's slots (Adam 2, momentum 1), and for the
    outputs of the convolutions, norms and pools at ``batch_size``, each kept
    for the backward pass and met by a gradient of the same size (as
    :func:`vgg_patch.training.network.estimate_memory`).

    Args:
      model: a name of :data:`MODELS`.
      image_size: the input side, in pixels (see :func:`check_image_size`).
      batch_size: images per step.
      num_classes: classes of the classifier.
      optimizer: ``'adam'`` or ``'momentum'``.

    Returns:
      ``(parameters, bytes)``.
    """
    spec = get_spec(model)
    if spec.family == "vgg":
        params, activations = _vgg_counts(spec, num_classes)
    elif spec.family == "inception":
        params, width, activations = INCEPTION_COUNTS[spec.depth]
        params += width * num_classes + num_classes
        activations *= (image_size / 224.0) ** 2
    else:
        params, activations = _resnet_counts(spec, image_size, num_classes)
    slots = 2 if optimizer == "adam" else 1
    return params, 4 * (params * (2 + slots) + 2 * batch_size * activations)
