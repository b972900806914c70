"""The network the trainer trains, seen through one small interface.

The trainer (:mod:`vgg_patch.training.graph`, :mod:`~vgg_patch.training.loop`)
never names a network class: it gets an object with this interface, and
:class:`Vgg19Network` (tensorflow-vgg's VGG19 with CBAM after pool5) is the
first one. Another tf-slim network joins by implementing the same six
members:

* ``estimate_memory(image_size, batch_size, optimizer)`` -> ``(parameters,
  bytes)``: a lower bound of what training needs, before any op exists;
* ``build(images, is_training)`` -> :class:`NetworkOutput`: builds the
  network in the current graph on float32 RGB images in [0, 1] (the input
  pipeline's output; the network does its own normalisation), creating its
  variables initialised from its start weights, if any;
* ``model_variables()``: after ``build``, every variable of the network
  (weights and moving statistics): what the best checkpoint saves and the
  export writes;
* ``save(sess, path)``: writes the trained weights to ``path`` (written to a
  temp file, then renamed); returns the path;
* ``export_name``: the path of that file inside the run's folder;
* ``run_settings``: a dict of what ``run.json`` records about the network
  (``model``, ``attention``), refused on resume when it changed.

:class:`vgg_patch.training.slim_network.SlimNetwork` (slim_attention.nets'
ResNets and VGGs, ``slim-attention-train``) is the second.
"""
import dataclasses
import typing

from vgg_patch import layout
from vgg_patch.training.run_dir import EXPORT_NAME

# CBAM after pool5: the channel MLP 512 -> 256 -> 512 with biases, the spatial
# 7x7 convolution over 2 maps (no bias) and its batch norm's beta and gamma.
_CBAM_PARAMS = 512 * 256 + 256 + 256 * 512 + 512 + 7 * 7 * 2 + 2


@dataclasses.dataclass
class NetworkOutput:
    """What a network's ``build`` gives the trainer.

    Attributes:
      logits: float [N, num_classes], before the softmax.
      attention_map: float [N, h, w, 1], the spatial attention map drawn in
        TensorBoard, or None for a network without one.
      end_points: named intermediate tensors (tf-slim's convention).
    """
    logits: typing.Any
    attention_map: typing.Any = None
    end_points: dict = dataclasses.field(default_factory=dict)


def estimate_memory(image_size, batch_size, num_classes, optimizer):
    """A lower-bound estimate of what training VGG19+CBAM needs, without building it.

    Counts the parameters of the VGG19 layer table at ``image_size`` (fc6's
    input is ``512 * ceil(image_size / 32) ** 2``) plus fc8 for ``num_classes``
    and CBAM, then float32 bytes for the weights, their gradients and the
    optimizer's slots (Adam 2, momentum 1), and for the activations of the
    convolutions and pools at ``batch_size``, each kept for the backward pass
    and met by a gradient of the same size.

    Args:
      image_size: the model's input side, in pixels.
      batch_size: images per step.
      num_classes: classes of fc8.
      optimizer: ``'adam'`` or ``'momentum'``.

    Returns:
      ``(parameters, bytes)``: the parameter count and the estimated bytes.
    """
    side = layout.pool5_size(image_size, image_size)[0]
    params = layout.param_count(layout.layer_shapes(
        side * side * layout.POOL5_CHANNELS, num_classes)) + _CBAM_PARAMS
    activations, side = 0, image_size
    stages = [name[4] for name, _, _ in layout.CONV_LAYERS] + [None]  # 'conv3_2' -> '3'
    for i, (_, _, c_out) in enumerate(layout.CONV_LAYERS):
        activations += side * side * c_out
        if stages[i + 1] != stages[i]:  # the stage's last: a 2x2 SAME max pool
            side = -(-side // 2)
            activations += side * side * c_out
    slots = 2 if optimizer == "adam" else 1
    return params, 4 * (params * (2 + slots) + 2 * batch_size * activations)


class Vgg19Network:
    """tensorflow-vgg's VGG19 with CBAM after pool5 (:class:`vgg_patch.vgg19.Vgg19`).

    Args:
      num_classes: classes of fc8.
      weights: the ``vgg19.npy`` to start from (tensorflow-vgg's file or a
        ``save_npy`` export), or None for a random start.
      dropout: dropout rate of fc6/fc7 while training.
      winograd: ``Vgg19``'s ``winograd``: a bool, or the layers computed by
        Winograd (the trainer passes :func:`vgg_patch.fastpath.choose_conv_path`'s).
    """

    export_name = EXPORT_NAME
    run_settings = {"attention": "cbam"}

    def __init__(self, num_classes, weights=None, dropout=0.5, winograd=False):
        self.num_classes = int(num_classes)
        self.weights = weights
        self.dropout = dropout
        self.winograd = winograd
        self.vgg = None  # the Vgg19, once built

    def estimate_memory(self, image_size, batch_size, optimizer):
        """See :func:`estimate_memory`."""
        return estimate_memory(image_size, batch_size, self.num_classes, optimizer)

    def build(self, images, is_training):
        """Builds VGG19+CBAM on ``images``; ``is_training`` is a bool tensor."""
        from vgg_patch.vgg19 import Vgg19
        self.vgg = Vgg19(self.weights, trainable=True, dropout=self.dropout,
                         attention="cbam", num_classes=self.num_classes,
                         winograd=self.winograd)
        self.vgg.build(images, is_training)
        end_points = {name: getattr(self.vgg, name) for name in ("pool5", "fc6", "fc7")}
        return NetworkOutput(logits=self.vgg.fc8, attention_map=self.vgg.attention_map,
                             end_points=end_points)

    def model_variables(self):
        """Every variable of the built network (weights and moving statistics):
        ``slim.get_model_variables()``, since Vgg19 makes every one a model variable."""
        import slim_attention as slim
        return slim.get_model_variables()

    def save(self, sess, path):
        """Writes the weights with ``Vgg19.save_npy``; returns the written path."""
        return self.vgg.save_npy(sess, path)  # a temp file, then renamed
