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
           'ConvPath', 'winograd_layers',
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
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError('image_size must be a positive int, got %r' % (image_size,))
    if training:
        table = TRAINING_SIDES
    else:
        table = INFERENCE_SIDES if batch >= FULL_BATCH else SMALL_BATCH_INFERENCE_SIDES
    return tuple(name for name, _, _ in layout.CONV_LAYERS
                 if name in table and table[name][0] <= _side(image_size, name)
                 <= table[name][1])


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


def _span(names):
    """'conv3_1-4, conv4_2-4': the layers, stage by stage."""
    stages = {}
    for name in names:
        stages.setdefault(name[:5], []).append(name[6:])
    return ', '.join('%s_%s' % (stage, '-'.join((idx[0], idx[-1])) if len(idx) > 1
                                and int(idx[-1]) - int(idx[0]) == len(idx) - 1
                                else ','.join(idx)) for stage, idx in stages.items())


def choose_conv_path(flag, bf16, image_size, training, gpu=None,  # pylint: disable=too-many-arguments
                     batch=FULL_BATCH):
    """The convolution path of a command.

    Args:
      flag: ``--winograd`` (True), ``--no-winograd`` (False), or neither (None).
      bf16: ``--bf16`` is on.
      image_size: the network's input side, in pixels.
      training: True for the trainer, False for the predictor.
      gpu: whether a GPU is used; None asks TensorFlow (:func:`has_gpu`), only
        when the answer matters.
      batch: images per inference step (see :func:`winograd_layers`).

    Returns:
      A :class:`ConvPath`.
    """
    if flag is True:
        return ConvPath(layout.WINOGRAD_LAYERS, 'convolutions: Winograd F(2x2, 3x3) in %s '
                        '(--winograd)' % _span(layout.WINOGRAD_LAYERS))
    if flag is False:
        return ConvPath((), 'convolutions: direct (--no-winograd)')
    if bf16:
        return ConvPath((), 'convolutions: direct (default with --bf16: bfloat16 runs '
                            "oneDNN's direct kernels)")
    layers = winograd_layers(image_size, training, batch)
    if not layers:
        return ConvPath((), 'convolutions: direct (default: Winograd does not pay at %d px '
                            'on CPU, docs/benchmarks.md; --winograd forces it)' % image_size)
    if has_gpu() if gpu is None else gpu:
        return ConvPath((), 'convolutions: direct (default on GPU: cuDNN picks its own '
                            'algorithms; --winograd forces Winograd)')
    return ConvPath(layers, 'convolutions: Winograd F(2x2, 3x3) in %s, direct elsewhere '
                            '(default on CPU in float32 at %d px, where it measured faster: '
                            'docs/benchmarks.md; --no-winograd for the direct path)'
                    % (_span(layers), image_size))


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
