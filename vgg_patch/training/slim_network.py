"""slim_attention.nets' networks behind the trainer's network interface.

:class:`SlimNetwork` is the second implementation of the interface of
:mod:`vgg_patch.training.network` (after VGG19+CBAM): ``slim-attention-train``
hands it to the same trainer. It builds ``slim_attention.nets.<family>.<model>``
in the model's own arg_scope with ``attention_module``, on the pipeline's RGB
images in [0, 1] preprocessed as the model's checkpoints expect
(:func:`preprocess`).

Start weights: ``checkpoint``, a tf-slim model-zoo checkpoint (or any
checkpoint with tf-slim's names). The base network is restored through
``tf.compat.v1.train.init_from_checkpoint``, which makes the checkpoint's
values the variables' initial values: the trainer's ``init`` then loads them,
exactly as VGG19+CBAM's start weights come in through its initialisers, and a
resumed run never reads the checkpoint again. What is restored is tf-slim's
own ``get_variables_to_restore(exclude=...)`` of the network minus its
attention blocks and, when the class count differs, its classifier
(:func:`restore_map`); those start fresh.

Convolutions: ``winograd`` names the 3x3 convolutions computed by Winograd
F(2x2, 3x3) (:mod:`vgg_patch.slim_winograd`; the same variables either way);
:func:`choose_conv_path` is the commands' default, from the measured rule of
:mod:`vgg_patch.fastpath`.

Export: a checkpoint of the model variables with tf-slim's names
(``export/slim-attention.ckpt.*``) and ``export/slim-attention.json`` naming
the model, attention, classes and image size (:mod:`vgg_patch.training.slim_export`).
"""
import contextlib
import logging

from vgg_patch import fastpath
from vgg_patch.training import slim_export
from vgg_patch.training import slim_models
from vgg_patch.training.network import NetworkOutput

logger = logging.getLogger("vgg_patch.train")

# The tf-slim ResNets' batch-norm decay (tf-slim's resnet_arg_scope default).
BATCH_NORM_DECAY = 0.997
# tf-slim's inception_v?_arg_scope default.
INCEPTION_BATCH_NORM_DECAY = 0.9997


def preprocess(images, preprocessing):
    """The model's own input scaling of RGB ``images`` in [0, 1].

    Args:
      images: float32 [N, H, W, 3], RGB in [0, 1] (the pipeline's output).
      preprocessing: ``'mean'``: x 255 minus :data:`slim_models.IMAGENET_MEANS`
        (VGG, ResNet v1); ``'inception'``: scaled to [-1, 1] (ResNet v2).

    Returns:
      The network's input, float32 of the same shape.

    Raises:
      ValueError: an unknown ``preprocessing``.
    """
    import tensorflow as tf
    if preprocessing == "mean":
        return images * 255.0 - tf.constant(slim_models.IMAGENET_MEANS, tf.float32)
    if preprocessing == "inception":
        return (images - 0.5) * 2.0
    raise ValueError("preprocessing must be 'mean' or 'inception', got %r" % (preprocessing,))


def network_fn(spec):
    """``(network function, arg_scope function)`` of ``spec`` in slim_attention.nets."""
    import importlib
    module = importlib.import_module("slim_attention.nets.%s" % spec.family)
    scope_fn = getattr(module, {"vgg": "vgg_arg_scope", "inception": spec.name + "_arg_scope"}
                       .get(spec.family, "resnet_arg_scope"))
    return getattr(module, spec.name), scope_fn


def conv_layers(spec):
    """The names :mod:`vgg_patch.fastpath` gives ``spec``'s 3x3 convolutions:
    a VGG's layers ('conv3_2'), a ResNet's blocks ('block2'); () for others."""
    if spec.family == "vgg":
        return tuple("conv%d_%d" % (stage + 1, i + 1)
                     for stage, count in enumerate(slim_models.VGG_CONVS[spec.depth])
                     for i in range(count))
    if spec.family in ("resnet_v1", "resnet_v2"):
        return fastpath.RESNET_BLOCKS
    return ()


def choose_conv_path(model, flag, bf16, image_size, training,  # pylint: disable=too-many-arguments
                     batch=fastpath.FULL_BATCH, gpu=None):
    """:func:`vgg_patch.fastpath.choose_conv_path` for ``model`` (a ``--model``
    name): which of its 3x3 convolutions Winograd computes, and why."""
    spec = slim_models.get_spec(model)
    return fastpath.choose_conv_path(flag, bf16, image_size, training, gpu, batch,
                                     network=spec.family, present=conv_layers(spec))


def with_batch_norm_decay(scope, decay):
    """An arg_scope dict whose convolutions' batch norms use ``decay`` (tf-slim's
    inception_v1/v2_arg_scope take no decay argument)."""
    scope = {key: dict(kwargs) for key, kwargs in scope.items()}
    for kwargs in scope.values():
        if "decay" in (kwargs.get("normalizer_params") or {}):
            kwargs["normalizer_params"] = dict(kwargs["normalizer_params"], decay=decay)
    return scope


def _first(names, limit=3):
    names = sorted(names)
    return ", ".join(names[:limit]) + (" (and %d more)" % (len(names) - limit)
                                       if len(names) > limit else "")


def check_checkpoint_path(checkpoint):
    """Refuses a ``checkpoint`` that is neither a V1 file nor a V2 prefix.

    Raises:
      ValueError: neither ``checkpoint`` nor ``checkpoint.index`` is a file.
    """
    import os
    if not (os.path.isfile(checkpoint) or os.path.isfile(checkpoint + ".index")):
        raise ValueError("--checkpoint %r: no such checkpoint (neither the file nor "
                         "%s.index exists)" % (checkpoint, checkpoint))


def read_checkpoint_shapes(checkpoint):
    """The ``{name: shape}`` of a checkpoint (a V2 prefix or a V1 file).

    Raises:
      ValueError: no such checkpoint, or it cannot be read (one line).
    """
    import tensorflow as tf
    check_checkpoint_path(checkpoint)
    try:
        return tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as err:
        raise ValueError("--checkpoint %r cannot be read as a TensorFlow checkpoint: %s"
                         % (checkpoint, str(err).strip().splitlines()[0])) from None


def restore_map(checkpoint, model, logits_scope, exclude):
    """What ``checkpoint`` restores into the built network: ``{name: variable}``.

    tf-slim's ``get_variables_to_restore(include=[model], exclude=exclude)``;
    the classifier (``model/logits_scope``) too when the checkpoint holds it
    with the same shape, else it is left fresh (another class count).

    Args:
      checkpoint: the checkpoint's path.
      model: the network's scope.
      logits_scope: the classifier's scope under ``model``.
      exclude: scopes never restored (the attention blocks').

    Raises:
      ValueError: unreadable checkpoint; a base variable of another shape in
        it, or missing from it (a checkpoint of another model); one line each.
    """
    import slim_attention as slim
    saved = read_checkpoint_shapes(checkpoint)
    variables = slim.get_variables_to_restore(include=[model + "/"], exclude=exclude)
    classifier = "%s/%s/" % (model, logits_scope)
    mapping, fresh, missing, wrong = {}, [], [], []
    for var in variables:
        name, shape = var.op.name, var.shape.as_list()
        if name.startswith(classifier) and (name not in saved or saved[name] != shape):
            fresh.append(name)
        elif name not in saved:
            missing.append(name)
        elif saved[name] != shape:
            wrong.append("%s is %s in it, %s here" % (name, saved[name], shape))
        else:
            mapping[name] = var
    if wrong:
        raise ValueError("--checkpoint %r does not fit %s: %s" % (checkpoint, model,
                                                                  "; ".join(wrong[:2])))
    if missing:
        raise ValueError("--checkpoint %r is not a %s checkpoint: it lacks %d of its "
                         "variables, e.g. %s; it holds e.g. %s"
                         % (checkpoint, model, len(missing), _first(missing),
                            _first(saved)))
    if fresh:
        logger.info("the classifier %s starts fresh (the checkpoint's has another "
                    "shape)", classifier[:-1])
    return mapping


class SlimNetwork:  # pylint: disable=too-many-instance-attributes
    """A slim_attention.nets network with optional attention, for the trainer.

    Args:
      model: a name of :data:`vgg_patch.training.slim_models.MODELS`.
      num_classes: classes of the classifier.
      attention: None or an ``attention_module`` of slim_attention.nets
        ('se', 'cbam', 'sam', 'gc', 'eca', 'nl').
      attention_params: None or a dict for the block.
      checkpoint: a tf-slim checkpoint to start the base network from, or None.
      class_names: the class names, written into the export's JSON.
      image_size: the input side, written into the export's JSON.
      dropout: dropout rate of a VGG's fc6/fc7 while training (ResNets have none).
      batch_norm_decay: the batch-norm decay (default tf-slim's: 0.997 for the
        ResNets, 0.9997 for the Inceptions).
      winograd: the convolutions computed by Winograd F(2x2, 3x3): names of
        :func:`conv_layers` (e.g. :func:`choose_conv_path`'s); () for none.

    Raises:
      ValueError: an unknown model or attention module.
    """

    export_name = slim_export.EXPORT_CHECKPOINT

    def __init__(self, model, num_classes, attention=None, attention_params=None,
                 checkpoint=None, class_names=None, image_size=None, dropout=0.5,
                 batch_norm_decay=None, winograd=()):
        from slim_attention.nets import placement
        self.spec = slim_models.get_spec(model)
        self.attention = placement.resolve_module(attention)
        self.attention_params = dict(attention_params or {})
        self.num_classes = int(num_classes)
        self.checkpoint = checkpoint
        self.class_names = list(class_names or [])
        self.image_size = image_size
        self.dropout = dropout
        self.batch_norm_decay = batch_norm_decay if batch_norm_decay is not None else (
            INCEPTION_BATCH_NORM_DECAY if self.spec.family == "inception"
            else BATCH_NORM_DECAY)
        self.winograd = tuple(winograd)
        self.restored = {}  # name -> variable, once built from a checkpoint
        self.saver = None  # the model variables' Saver, once built

    @property
    def model(self):
        return self.spec.name

    @property
    def scope(self):
        """The network's variable scope (``InceptionV3`` for inception_v3)."""
        return slim_models.network_scope(self.spec)

    @property
    def run_settings(self):
        """What ``run.json`` records about the network (checked on resume)."""
        return {"model": self.model, "attention": self.attention,
                "attention_params": self.attention_params}

    def estimate_memory(self, image_size, batch_size, optimizer):
        """See :func:`vgg_patch.training.slim_models.estimate_memory`."""
        return slim_models.estimate_memory(self.model, image_size, batch_size,
                                           self.num_classes, optimizer)

    def _arg_scope(self):
        _, scope_fn = network_fn(self.spec)
        # The trainer's --weight-decay is the one L2 term: none from the arg_scope.
        if self.spec.family == "vgg":
            return scope_fn(weight_decay=0.0)
        if self.spec.family == "inception":
            return with_batch_norm_decay(scope_fn(weight_decay=0.0), self.batch_norm_decay)
        return scope_fn(weight_decay=0.0, batch_norm_decay=self.batch_norm_decay)

    def build(self, images, is_training):
        """Builds the network on ``images`` (RGB in [0, 1]); ``is_training``: a bool
        or bool tensor.

        Raises:
          ValueError: an image size the network cannot take, bad
            attention_params, or a ``checkpoint`` that does not fit.
        """
        import slim_attention as slim
        import tensorflow as tf
        from slim_attention.attention import ATTENTION_MAPS
        from slim_attention.nets import placement
        size = images.shape.as_list()[1]
        if size is not None:
            slim_models.check_image_size(self.model, size)
        fn, _ = network_fn(self.spec)
        kwargs = dict(num_classes=self.num_classes, is_training=is_training,
                      attention_module=self.attention,
                      attention_params=self.attention_params or None)
        kwargs.update(slim_models.NETWORK_KWARGS.get(self.model, {}))
        if self.spec.family == "vgg":
            kwargs["dropout_keep_prob"] = 1.0 - self.dropout
        with slim.arg_scope(self._arg_scope()), self._convolutions():
            logits, end_points = fn(preprocess(images, self.spec.preprocessing), **kwargs)
        if logits.shape.ndims == 4:  # tf-slim's ResNets keep [N, 1, 1, classes]
            logits = tf.squeeze(logits, [1, 2], name="%s/SpatialSqueeze" % self.scope)
        maps = [m for m in tf.compat.v1.get_collection(ATTENTION_MAPS)
                if m.name.startswith(self.scope + "/")]
        if self.checkpoint is not None:
            self.restored = restore_map(self.checkpoint, self.scope,
                                        self.spec.logits_scope,
                                        placement.attention_scopes(self.scope + "/"))
            tf.compat.v1.train.init_from_checkpoint(
                self.checkpoint, {name: var for name, var in self.restored.items()})
            logger.info("%d variables of %s start from %s; %d attention and classifier "
                        "variables start fresh", len(self.restored), self.scope,
                        self.checkpoint,
                        len(self.model_variables()) - len(self.restored))
        self.saver = slim_export.make_saver(self.model_variables())
        # The deepest spatial map (CBAM, SAM), the one nearest the classifier.
        return NetworkOutput(logits=logits, attention_map=maps[-1] if maps else None,
                             end_points=end_points)

    def _convolutions(self):
        """The context the network is built in: Winograd in ``self.winograd``'s
        convolutions, or nothing."""
        if not self.winograd:
            return contextlib.nullcontext()
        from vgg_patch import slim_winograd
        return slim_winograd.winograd_convolutions(
            slim_winograd.scope_matcher(self.winograd))

    def restore(self, sess, path):
        """Restores the model variables from ``path`` (an export, after ``build``)."""
        self.saver.restore(sess, path)

    def model_variables(self):
        """The network's model variables (weights, attention, moving statistics)."""
        import slim_attention as slim
        return slim.get_model_variables(self.scope + "/")

    def save(self, sess, path):
        """Writes the export (see :func:`vgg_patch.training.slim_export.save`)."""
        return slim_export.save(sess, self.saver, path, slim_export.describe(self))
