"""The commands' default convolution path, and the bf16 hint.

``vgg19-cbam-train`` and ``vgg19-cbam-predict`` run each 3x3 convolution either
directly (``tf.nn.conv2d``, oneDNN's kernels, as Keras does) or by Winograd
F(2x2, 3x3) (:mod:`vgg_patch.winograd`), which does 2.25x fewer
multiply-adds but adds transforms whose cost depends on the layer's size.
``bench/run.py --only winograd`` times both per VGG19 layer and input size;
the rule below is read from that table (docs/benchmarks.md, "Where Winograd
pays"):

* on CPU in float32, a layer uses Winograd when its input side (pixels, after
  the pools before it) is within the range where it measured faster:
  :data:`TRAINING_SIDES` for training (forward + backward, batch 16),
  :data:`INFERENCE_SIDES` for inference at batch 16 and
  :data:`SMALL_BATCH_INFERENCE_SIDES` at smaller batches (forward, batch 1);
* on GPU, direct (cuDNN chooses its own algorithms, Winograd among them);
* with ``--bf16``, direct (the bfloat16 rewrite leaves Winograd's layers in
  float32, slower than bf16's direct kernels);
* ``--winograd`` forces Winograd on stages 3-5 (:data:`~vgg_patch.layout.WINOGRAD_LAYERS`),
  ``--no-winograd`` forces the direct path.

``slim-attention-train`` and ``slim-attention-predict`` take the same path
for slim's networks (:func:`rule_layers`): slim's VGGs have VGG19's shapes and
take its rule; the ResNets (v1 and v2) have their own, per block
(:data:`RESNET_TRAINING_SIDES` ...), read from ``bench/run.py --only
winograd_slim``; ``--winograd`` forces every block. Other networks stay direct.

The library's :class:`vgg_patch.Vgg19` stays direct unless told otherwise
(``winograd=True`` or a collection of layer names, such as
:func:`winograd_layers`' answer).

This module imports TensorFlow only to look for a GPU, and only when the rule
would turn Winograd on.
"""
import dataclasses
import logging

from vgg_patch import layout
from vgg_patch import session

__all__ = ['TRAINING_SIDES', 'INFERENCE_SIDES', 'SMALL_BATCH_INFERENCE_SIDES', 'FULL_BATCH',
           'RESNET_BLOCKS', 'RESNET_TRAINING_SIDES', 'RESNET_INFERENCE_SIDES',
           'RESNET_SMALL_BATCH_INFERENCE_SIDES', 'FORCED_LAYERS',
           'ConvPath', 'winograd_layers', 'resnet_side', 'resnet_winograd_blocks', 'rule_layers',
           'has_gpu', 'choose_conv_path', 'bf16_hint']

_LOG = logging.getLogger(__name__)

_ANY = 1 << 30  # no upper limit (measured up to 224 px inputs)


def _stages(**sides):
    """``{layer: (side, _ANY)}`` for every conv layer of the given stages,
    e.g. ``conv3=8``: conv3_1 ... conv3_4 from an 8-pixel input side up."""
    return {name: (sides[name[:5]], _ANY) for name, _, _ in layout.CONV_LAYERS
            if name[:5] in sides}


#: Layer -> (smallest, largest) input side, in pixels, at which Winograd is
#: used when training (forward + backward measured faster at batch 16).
#: Layers not listed stay direct. Stages 1-2 measured faster per layer too,
#: but are left direct until the whole network's time and memory with them
#: are measured (docs/benchmarks.md).
TRAINING_SIDES = _stages(conv3=8, conv4=4, conv5=4)

#: The same for inference at batch 16 (the predictor's batch).
INFERENCE_SIDES = _stages(conv3=8, conv4=8, conv5=7)

#: The same for inference at smaller batches: at batch 1 the filter transform,
#: done on every call, is not spread over many images (measured at batch 1).
SMALL_BATCH_INFERENCE_SIDES = {'conv3_1': (40, _ANY), 'conv4_1': (28, _ANY),
                               **{'conv3_%d' % i: (28, _ANY) for i in (2, 3, 4)},
                               **{'conv4_%d' % i: (20, _ANY) for i in (2, 3, 4)}}

#: Inference batches from this size up use :data:`INFERENCE_SIDES`.
FULL_BATCH = 16


def _side(image_size, layer):
    """The input side of ``layer`` ('conv3_2' -> stage 3) for ``image_size`` px."""
    side = image_size
    for _ in range(int(layer[4]) - 1):
        side = -(-side // 2)  # 2x2 'SAME' pools
    return side


def _check_size(image_size):
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError('image_size must be a positive int, got %r' % (image_size,))


def winograd_layers(image_size, training, batch=FULL_BATCH):
    """The conv layers the rule computes by Winograd at ``image_size`` px.

    Args:
      image_size: the network's input height and width, in pixels.
      training: True for a training step, False for inference.
      batch: images per inference step; below :data:`FULL_BATCH` the
        small-batch table applies (ignored when training).

    Returns:
      A tuple of layer names, in the network's order (empty: all direct).

    Raises:
      ValueError: ``image_size`` is not a positive int.
    """
    _check_size(image_size)
    if training:
        table = TRAINING_SIDES
    else:
        table = INFERENCE_SIDES if batch >= FULL_BATCH else SMALL_BATCH_INFERENCE_SIDES
    return tuple(name for name, _, _ in layout.CONV_LAYERS
                 if name in table and table[name][0] <= _side(image_size, name)
                 <= table[name][1])


#: tf-slim's ResNet blocks; in each, the 3x3 convolution (``conv2``) of every
#: unit of stride 1 (all but the last unit of blocks 1-3).
RESNET_BLOCKS = ('block1', 'block2', 'block3', 'block4')

#: Block -> (smallest, largest) input side of its stride-1 units at which a
#: ResNet (v1 and v2) uses Winograd when training: from the smallest side at
#: which forward + backward measured faster (median) at both batch 16 and 32,
#: there and at every larger side measured. block1 (64 channels) stays
#: direct: slower at some larger sides. Sides below those measured stay direct.
RESNET_TRAINING_SIDES = {'block2': (8, _ANY), 'block3': (4, _ANY), 'block4': (2, _ANY)}

#: The same for inference at batch 16 and more (forward measured at 16 and 32).
RESNET_INFERENCE_SIDES = {'block2': (8, _ANY), 'block3': (10, _ANY), 'block4': (5, _ANY)}

#: The same for inference at smaller batches: none (slower at batch 1 everywhere).
RESNET_SMALL_BATCH_INFERENCE_SIDES = {}


def resnet_side(image_size, block):
    """The input side of ``block``'s stride-1 units ('block2') for ``image_size`` px:
    the root (7x7 conv and max-pool, stride 2 each) quarters it, each block
    before halves it ('SAME': rounding up)."""
    side = -(-image_size // 4)
    for _ in range(int(block[5:]) - 1):
        side = -(-side // 2)
    return side


def resnet_winograd_blocks(image_size, training, batch=FULL_BATCH):
    """The ResNet blocks whose stride-1 3x3 convolutions the rule computes by
    Winograd at ``image_size`` px (arguments as :func:`winograd_layers`)."""
    _check_size(image_size)
    if training:
        table = RESNET_TRAINING_SIDES
    else:
        table = (RESNET_INFERENCE_SIDES if batch >= FULL_BATCH
                 else RESNET_SMALL_BATCH_INFERENCE_SIDES)
    return tuple(block for block in RESNET_BLOCKS if block in table
                 and table[block][0] <= resnet_side(image_size, block) <= table[block][1])


def has_gpu():
    """True when TensorFlow sees a GPU (imports TensorFlow)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return bool(tf.config.list_physical_devices('GPU'))


@dataclasses.dataclass(frozen=True)
class ConvPath:
    """Which convolutions a command runs, and why.

    Attributes:
      winograd: the layers computed by Winograd (a tuple of names, empty for
        the direct path): what ``Vgg19(winograd=...)`` takes.
      reason: one line for the run's log.
    """
    winograd: tuple
    reason: str


def _run_text(idx):
    """'1-4' for consecutive numbers ['1', '2', '3', '4'], else '1,3'."""
    if len(idx) > 1 and int(idx[-1]) - int(idx[0]) == len(idx) - 1:
        return '%s-%s' % (idx[0], idx[-1])
    return ','.join(idx)


def _span(names):
    """'conv3_1-4, conv4_2-4': the layers, stage by stage."""
    stages = {}
    for name in names:
        stages.setdefault(name[:5], []).append(name[6:])
    return ', '.join('%s_%s' % (stage, _run_text(idx)) for stage, idx in stages.items())


#: The layers ``--winograd`` forces, per network (see :func:`rule_layers`).
FORCED_LAYERS = {'vgg19': layout.WINOGRAD_LAYERS, 'vgg': layout.WINOGRAD_LAYERS,
                 'resnet': RESNET_BLOCKS}


def _family(network):
    """'vgg19', 'vgg' (slim's VGGs), 'resnet' (v1 and v2), or None (no rule)."""
    if network in ('vgg19', 'vgg'):
        return network
    return 'resnet' if network in ('resnet_v1', 'resnet_v2') else None


def rule_layers(network, image_size, training, batch=FULL_BATCH):
    """The layers the rule computes by Winograd in ``network`` at ``image_size`` px.

    Args:
      network: ``'vgg19'`` (vgg_patch's), or a ``slim_attention.nets`` family:
        ``'vgg'`` (VGG19's rule: slim's VGGs have its shapes), ``'resnet_v1'``,
        ``'resnet_v2'`` (:func:`resnet_winograd_blocks`); any other: none.
      image_size, training, batch: see :func:`winograd_layers`.

    Returns:
      A tuple of VGG layer names or ResNet block names (empty: all direct).
    """
    family = _family(network)
    if family == 'resnet':
        return resnet_winograd_blocks(image_size, training, batch)
    return winograd_layers(image_size, training, batch) if family else ()


def _where(layers):
    """'conv3_1-4, conv4_1-4' or 'the stride-1 units' conv2 in block2-4'."""
    if not layers or not layers[0].startswith('block'):
        return _span(layers)
    return "the stride-1 units' conv2 of block%s" % _run_text([name[5:] for name in layers])


def _keep(layers, present):
    return tuple(layers) if present is None else tuple(n for n in layers if n in present)


def choose_conv_path(flag, bf16, image_size, training, gpu=None,  # pylint: disable=too-many-arguments
                     batch=FULL_BATCH, network='vgg19', present=None):
    """The convolution path of a command.

    Args:
      flag: ``--winograd`` (True), ``--no-winograd`` (False), or neither (None).
      bf16: ``--bf16`` is on.
      image_size: the network's input side, in pixels.
      training: True for the trainer, False for the predictor.
      gpu: whether a GPU is used; None asks TensorFlow (:func:`has_gpu`), only
        when the answer matters.
      batch: images per inference step (see :func:`winograd_layers`).
      network: see :func:`rule_layers` (default vgg_patch's VGG19).
      present: the network's layer names, when it lacks some of the rule's
        (slim's vgg_16 has no conv3_4); None: all.

    Returns:
      A :class:`ConvPath`.
    """
    if flag is True and _family(network) is None:
        return ConvPath((), 'convolutions: direct (--winograd: no Winograd path for %s)'
                        % network)
    if flag is True:
        forced = _keep(FORCED_LAYERS[_family(network)], present)
        return ConvPath(forced, 'convolutions: Winograd F(2x2, 3x3) in %s (--winograd)'
                        % _where(forced))
    if flag is False:
        return ConvPath((), 'convolutions: direct (--no-winograd)')
    if bf16:
        return ConvPath((), 'convolutions: direct (default with --bf16: bfloat16 runs '
                            "oneDNN's direct kernels)")
    layers = _keep(rule_layers(network, image_size, training, batch), present)
    if not layers:
        return ConvPath((), 'convolutions: direct (default: Winograd does not pay at %d px '
                            'on CPU, docs/benchmarks.md; --winograd forces it)' % image_size
                        if _family(network) else 'convolutions: direct (no Winograd rule '
                        'for %s)' % network)
    if has_gpu() if gpu is None else gpu:
        return ConvPath((), 'convolutions: direct (default on GPU: cuDNN picks its own '
                            'algorithms; --winograd forces Winograd)')
    return ConvPath(layers, 'convolutions: Winograd F(2x2, 3x3) in %s, direct elsewhere '
                            '(default on CPU in float32 at %d px, where it measured faster: '
                            'docs/benchmarks.md; --no-winograd for the direct path)'
                    % (_where(layers), image_size))


#: --bf16's measured effect on this project's training step (docs/benchmarks.md,
#: "bfloat16 vs float32"); the hint below quotes it. Update both together.
BF16_TRAINING_SPEEDUP = '3.4x'
BF16_LOGITS_ERROR = '3%'


def bf16_hint(bf16, cpuinfo_path=session.CPUINFO):
    """One line suggesting ``--bf16`` where the CPU has native bfloat16, else None.

    Args:
      bf16: ``--bf16`` is already on (then no hint).
      cpuinfo_path: where the kernel lists the CPU's feature flags.
    """
    flags = session.cpu_bf16_flags(cpuinfo_path)
    if bf16 or not flags:
        return None
    return ('this CPU has native bfloat16 (%s): --bf16 trained about %s faster than '
            'float32 in docs/benchmarks.md, with logits within about %s of float32'
            % (', '.join(flags), BF16_TRAINING_SPEEDUP, BF16_LOGITS_ERROR))
