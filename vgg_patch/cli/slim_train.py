"""slim-attention-train: train any slim_attention.nets network, with attention.

The trainer of ``vgg19-cbam-train`` (data pipeline, resume, checkpoints,
TensorBoard, NaN guard, progress, ``best/``, export, Ctrl-C), with the network
of ``--model`` and ``--attention``
(:class:`vgg_patch.training.slim_network.SlimNetwork`)::

    slim-attention-train --model resnet_v1_50 --attention cbam            # demo
    slim-attention-train --model resnet_v1_50 --attention cbam \\
        --data-dir photos/ --checkpoint resnet_v1_50.ckpt                  # fine-tune

``--checkpoint`` starts the base network from a tf-slim model-zoo checkpoint:
every base variable restored, the attention blocks fresh, the classifier fresh
when the class count differs. The run's folder holds what
``vgg19-cbam-train``'s does, but the export is
``export/slim-attention.ckpt`` (tf-slim names) and ``export/slim-attention.json``
(see :mod:`vgg_patch.training.slim_export`), read by
``slim-attention-predict``. Exit statuses as ``vgg19-cbam-train``.

Convolutions: as ``vgg19-cbam-train``'s (``--winograd``/``--no-winograd``,
``--bf16``), with the network's own measured rule
(:func:`vgg_patch.training.slim_network.choose_conv_path`); the run's first
line says which path runs and why.

The built-in demo (no ``--data-dir``) trains on scikit-learn's digits at the
model's demo size (``ModelSpec.demo_image_size``: 64 px for the ResNets and
inception_v2, 75 for inception_v3, 224 for the VGGs and inception_v1, whose
last layers fix the size) with the demo recipe and a batch-norm
decay of 0.9, so that the moving statistics follow within its few steps. No
TensorFlow is imported before training starts.
"""
import argparse
import json
import sys

from vgg_patch.cli import train as train_cli
from vgg_patch.cli.common import UsageError, add_precision_flags, check_precision_flags
from vgg_patch.training import config as config_lib
from vgg_patch.training import slim_models
from vgg_patch.training import workers as workers_lib
from vgg_patch.training.slim_network import (SlimNetwork, check_checkpoint_path,
                                             choose_conv_path)

PROG = "slim-attention-train"

ATTENTION_CHOICES = ("none", "se", "cbam", "sam", "gc", "eca", "nl", "se_block",
                     "cbam_block")
DEMO_BATCH_NORM_DECAY = 0.9
# What --winograd computes by Winograd, for the help of both slim commands.
FORCED_WINOGRAD = ("the 3x3 convolutions of a ResNet's stride-1 units (all blocks) or of a "
                   "VGG's stages 3-5")

_DESCRIPTION = ("Train one of slim_attention.nets' tf-slim networks (--model), with an "
                "attention block in the paper's place (--attention), on a folder of "
                "images (one subfolder per class), in graph mode; optionally from a "
                "tf-slim model-zoo checkpoint (--checkpoint: base restored, attention "
                "and a classifier of another class count fresh). With no --data-dir it "
                "runs a short built-in demo on scikit-learn's handwritten digits. "
                "Recipes as vgg19-cbam-train's, --checkpoint counting as --weights. "
                "Running the same command again resumes.")

# vgg19-cbam-train's flags this command words or leaves out differently.
_OWN_FLAGS = ("--weights", "--image-size", "--dropout", "--train-dir", "--trainable-scopes")


def _add_network_flags(a):
    """The network and its start."""
    a("--model", required=True, choices=list(slim_models.MODELS),
      help="the tf-slim network (slim_attention.nets)")
    a("--attention", choices=ATTENTION_CHOICES, default="none",
      help="the block in the network (default none: tf-slim's network exactly); "
           "placements: README, 'Attention in slim's networks'")
    a("--attention-params", metavar="JSON",
      help="keyword arguments of the block as a JSON object, e.g. "
           "'{\"reduction_ratio\": 8}'")
    a("--checkpoint", help="tf-slim checkpoint to start the base network from (e.g. "
                           "the model zoo's resnet_v1_50.ckpt)")
    a("--image-size", type=int,
      help="model input size (default 224; demo: 64 for the ResNets and inception_v2, "
           "75 for inception_v3; the VGGs need 224-255, inception_v1 193-224)")
    a("--dropout", type=float, default=0.5,
      help="dropout rate of a VGG's fc6/fc7 while training (default 0.5; ResNets "
           "have none)")
    a("--batch-norm-decay", type=float,
      help="the batch-norm decay (default tf-slim's: 0.997 for the ResNets, 0.9997 "
           "for the Inceptions; demo 0.9)")
    a("--train-dir", help="checkpoints, summaries, class names and the export (default "
                          "./slim-attention-train-MODEL[-ATTENTION], or "
                          "./slim-attention-demo-MODEL[-ATTENTION] for the demo)")
    a("--trainable-scopes",
      help="comma-separated variable-scope prefixes to train, e.g. "
           "'resnet_v1_50/logits'; everything else is frozen (default: train all)")


def build_parser():
    """Returns the argparse parser of ``slim-attention-train``: its network flags,
    then ``vgg19-cbam-train``'s data, recipe and output flags (without
    ``--weights``), ``--bf16``, ``--winograd``/``--no-winograd`` and ``-q``."""
    p = argparse.ArgumentParser(prog=PROG, description=_DESCRIPTION)
    _add_network_flags(p.add_argument)

    def add_shared(*names, **kwargs):
        if names[0] not in _OWN_FLAGS:
            p.add_argument(*names, **kwargs)
    for add_flags in (train_cli.add_data_flags, train_cli.add_recipe_flags,
                      train_cli.add_output_flags):
        add_flags(add_shared)
    add_precision_flags(p, "training", FORCED_WINOGRAD)
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar or info logs")
    return p


def parse_attention_params(text):
    """The ``--attention-params`` JSON as a dict ({} for None).

    Raises:
      UsageError: not a JSON object.
    """
    if text is None:
        return {}
    try:
        params = json.loads(text)
    except ValueError as err:
        raise UsageError("--attention-params %r is not JSON: %s" % (text, err)) from None
    if not isinstance(params, dict):
        raise UsageError("--attention-params must be a JSON object such as "
                         "'{\"reduction_ratio\": 8}', got %r" % text)
    return params


def _default_train_dir(args, demo):
    name = args.model + ("" if args.attention is None else "-" + args.attention)
    return ("slim-attention-demo-" if demo else "slim-attention-train-") + name


def resolve_slim_config(args):
    """vgg19-cbam-train's :func:`~vgg_patch.training.config.resolve_config`, with
    the network's defaults and checks.

    Raises:
      UsageError: bad input (sizes, attention parameters, checkpoint, ...).
    """
    from slim_attention.nets import placement
    spec = slim_models.MODELS[args.model]
    demo = args.data_dir is None
    args.attention = None if args.attention == "none" else placement.resolve_module(
        args.attention)
    check_precision_flags(args)
    # resolve_config's own path is VGG19's: the network's is chosen below.
    flag, args.weights, args.winograd = args.winograd, None, False
    if demo and args.image_size is None:
        args.image_size = spec.demo_image_size
    if args.batch_norm_decay is None:
        args.batch_norm_decay = DEMO_BATCH_NORM_DECAY if demo else None
    if args.checkpoint is not None and not demo:  # fine-tuning's recipe
        for key, value in config_lib.FINE_TUNE_RECIPE.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
    if args.train_dir is None:
        args.train_dir = _default_train_dir(args, demo)
    args = config_lib.resolve_config(args)
    path = choose_conv_path(args.model, flag, args.bf16, args.image_size, training=True)
    args.winograd, args.conv_path = path.winograd, path.reason
    params = parse_attention_params(args.attention_params)
    try:
        slim_models.check_image_size(args.model, args.image_size)
        if args.attention is not None:
            placement.check_params(args.attention, params)
        if args.checkpoint is not None and not workers_lib.receives_weights():
            check_checkpoint_path(args.checkpoint)  # only the chief reads it
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    if args.attention is None and params:
        raise UsageError("--attention-params needs --attention")
    if args.batch_norm_decay is not None and not 0.0 <= args.batch_norm_decay < 1.0:
        raise UsageError("--batch-norm-decay must be in [0, 1), got %r"
                         % args.batch_norm_decay)
    args.attention_params = params
    args.weights = args.checkpoint  # what the trainer logs and run.json records
    return args


def make_network(args, dataset):
    """The :class:`~vgg_patch.training.slim_network.SlimNetwork` ``args`` describe
    (on a cluster, only the chief's starts from ``--checkpoint``)."""
    checkpoint = workers_lib.start_weights(
        args.checkpoint, workers_lib.from_environment(args), "--checkpoint")
    return SlimNetwork(args.model, len(dataset.class_names), args.attention,
                       args.attention_params, checkpoint, dataset.class_names,
                       args.image_size, args.dropout, args.batch_norm_decay,
                       args.winograd)


def main(argv=None):
    """Entry point of ``slim-attention-train``.

    Args:
      argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
      The exit status: 0 done, 1 training failed, 2 bad input, 130 interrupted.
    """
    return train_cli.train_command(argv, build_parser(), resolve_slim_config, PROG,
                                   make_network)


if __name__ == "__main__":
    sys.exit(main())
