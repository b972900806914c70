"""vgg19-cbam-train: retrain the CBAM-patched VGG19 on a folder of images.

Graph mode throughout (``tf.compat.v1``: a Graph, placeholders, a Session). One
command does the whole job::

    vgg19-cbam-train --data-dir photos/ --weights vgg19.npy      # fine-tune
    vgg19-cbam-train                                             # built-in demo

and running the same command again resumes from the newest checkpoint at the
same step and the same position in the epoch.

What lands in ``--train-dir``:

- ``model.ckpt-STEP.*`` and ``checkpoint``: the last ``--keep-checkpoints``
  checkpoints (model, optimizer and loop state), written every
  ``--checkpoint-every`` steps, at each epoch's end, on Ctrl-C and at the end.
- ``best/``: the checkpoint with the best validation accuracy so far.
- ``export/vgg19-cbam.npy``: the best weights, written with ``Vgg19.save_npy``
  (CBAM included), loadable with ``Vgg19(vgg19_npy_path=...)``.
- ``classes.txt`` (class names, one per line, in label order) and
  ``run.json`` (image size, number of classes, ...) for ``vgg19-cbam-predict``.
- ``events.out.tfevents.*``: TensorBoard summaries (loss, accuracy, learning
  rate, validation accuracy and cross-entropy, attention maps of a few
  validation images drawn by :mod:`vgg_patch.figure`); the last line printed
  gives the ``tensorboard --logdir`` command.

Exit status: 0 done; 1 training failed (NaN loss, a checkpoint, export or
summary that cannot be written); 2 bad input (missing or empty folder, one
class, unreadable weights, a size that does not fit in memory, ...), one line
on stderr; 130 interrupted by Ctrl-C (SIGINT) or SIGTERM, in any phase, after
saving a checkpoint if training had begun.
"""
import argparse
import contextlib
import errno
import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import sys
import threading
import time

import numpy as np

from vgg_patch import data as data_lib
from vgg_patch import figure as figure_lib
from vgg_patch.progress import ProgressBar
from vgg_patch.session import session_config

logger = logging.getLogger("vgg_patch.train")  # also under python -m

PROG = "vgg19-cbam-train"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DEFAULT_TRAIN_DIR = "vgg19-cbam-train"
DEMO_TRAIN_DIR = "vgg19-cbam-demo"
CKPT_NAME = "model.ckpt"
EXPORT_NAME = os.path.join("export", "vgg19-cbam.npy")
CLASSES_FILE = "classes.txt"
RUN_FILE = "run.json"

# The optimisation recipe for one's own data depends on where training starts.
# From scratch (no --weights): Adam 1e-4 after one epoch of linear warm-up, no
# weight decay, chosen by measurement (bench/from_scratch.py; README): at 32 px
# momentum SGD 1e-3 barely moves and 1e-2 diverges, and at 224 px Adam's first
# full-size steps (each weight of fc6's 25,088 inputs moving by the learning
# rate at once) throw the loss up to 30x ln 2 without the warm-up.
SCRATCH_RECIPE = dict(optimizer="adam", learning_rate=1e-4, weight_decay=0.0,
                      warmup_epochs=1.0)
# Fine-tuning from --weights: momentum SGD 1e-3 with weight decay 5e-4.
FINE_TUNE_RECIPE = dict(optimizer="momentum", learning_rate=1e-3, weight_decay=5e-4,
                        warmup_epochs=0.0)
# Settings of the built-in demo (no --data-dir): scikit-learn's digits at 48x48,
# from scratch with its own measured recipe. 48 px is the smallest size where
# pool5 is 2x2 (SAME pooling), so CBAM's spatial map still has something to
# show; flips are off for digits.
DEMO_SETTINGS = dict(image_size=48, epochs=3, batch_size=32, optimizer="adam",
                     learning_rate=1e-4, weight_decay=0.0, flip=False,
                     warmup_epochs=0.0, keep_checkpoints=2)
# Defaults for one's own data (plus the recipe above).
DATA_DEFAULTS = dict(image_size=224, epochs=10, batch_size=32, flip=True,
                     keep_checkpoints=3)

_NAN_TAG = "vgg19-cbam-train: non-finite loss or gradient"

# VGG19's 16 3x3 convolutions, (input channels, output channels), by stage;
# each stage ends in a 2x2 SAME max pool (side -> ceil(side / 2)).
_VGG19_STAGES = (((3, 64), (64, 64)),
                 ((64, 128), (128, 128)),
                 ((128, 256), (256, 256), (256, 256), (256, 256)),
                 ((256, 512), (512, 512), (512, 512), (512, 512)),
                 ((512, 512), (512, 512), (512, 512), (512, 512)))
# CBAM after pool5: the channel MLP 512 -> 256 -> 512 with biases, the spatial
# 7x7 convolution over 2 maps (no bias) and its batch norm's beta and gamma.
_CBAM_PARAMS = 512 * 256 + 256 + 256 * 512 + 512 + 7 * 7 * 2 + 2
# Absolute bounds, whatever the machine: fc6 alone would hold 34 G weights at
# --image-size 4096 (ceil(4096 / 32) ** 2 * 512 * 4096).
MAX_IMAGE_SIZE = 4096
MAX_BATCH_SIZE = 65536


class UsageError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


class TrainingFailed(Exception):
    """Training could not go on (NaN loss): one line on stderr, exit status 1."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: a checkpoint was saved if training began; exit status 130."""


def build_parser():
    """Returns the argparse parser of ``vgg19-cbam-train``."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Retrain tensorflow-vgg's VGG19 with CBAM after pool5 on a folder "
                    "of images (one subfolder per class), in graph mode. With no "
                    "--data-dir it runs a short built-in demo on scikit-learn's "
                    "handwritten digits, from scratch. The optimisation defaults "
                    "depend on --weights: from scratch Adam 1e-4 after a 1-epoch "
                    "warm-up, no weight decay; fine-tuning momentum SGD 1e-3, weight "
                    "decay 5e-4, no warm-up. Running the same command again resumes "
                    "from the newest checkpoint.")
    a = p.add_argument
    a("--data-dir", help="folder with one subfolder of images (JPEG/PNG/BMP/GIF) per "
                         "class; without it: the built-in digits demo")
    a("--val-dir", help="separate validation folder with the same class subfolders; "
                        "default: split --data-dir with --val-fraction and --seed")
    a("--val-fraction", type=float, default=0.2,
      help="fraction of each class held out for validation (default 0.2)")
    a("--train-dir", help="checkpoints, summaries, class names and exports (default "
                          "./%s, or ./%s for the demo)" % (DEFAULT_TRAIN_DIR, DEMO_TRAIN_DIR))
    a("--weights", help="start from this vgg19.npy (tensorflow-vgg's file or a "
                        "save_npy export); default: from scratch")
    a("--num-classes", type=int,
      help="number of classes; default: the number of class subfolders (must match)")
    a("--image-size", type=int,
      help="model input size (default 224; demo 48). The original vgg19.npy fc6 "
           "needs 224")
    a("--batch-size", type=int, help="images per step (default 32)")
    a("--epochs", type=int, help="epochs to train in total (default 10; demo 3)")
    a("--max-steps", type=int, help="stop after this many steps in total")
    a("--optimizer", choices=("momentum", "adam"),
      help="momentum SGD or Adam (default: adam from scratch, momentum with "
           "--weights)")
    a("--momentum", type=float, default=0.9, help="momentum of SGD (default 0.9)")
    a("--learning-rate", type=float,
      help="peak learning rate (default: 1e-4 from scratch, 1e-3 with --weights)")
    a("--lr-schedule", choices=("cosine", "step", "constant"), default="cosine",
      help="cosine decay to 0 over the run, step (x0.1 at 50%% and 75%% of the run) "
           "or constant (default cosine)")
    a("--warmup-epochs", type=float,
      help="linear learning-rate warmup, in epochs (default: 1 from scratch, 0 with "
           "--weights; demo 0)")
    a("--weight-decay", type=float,
      help="L2 penalty on weights (not biases or BatchNorm) (default: 0 from "
           "scratch, 5e-4 with --weights)")
    a("--dropout", type=float, default=0.5,
      help="dropout rate of fc6/fc7 while training (default 0.5)")
    a("--trainable-scopes",
      help="comma-separated variable-scope prefixes to train, e.g. 'cbam,fc'; "
           "everything else is frozen (default: train all)")
    a("--no-flip", dest="flip", action="store_false", default=None,
      help="no random left-right flips (default: flips on; off for the demo)")
    a("--checkpoint-every", type=int, default=500,
      help="save a checkpoint every N steps, besides each epoch end (default 500)")
    a("--keep-checkpoints", type=int,
      help="keep the newest K checkpoints (default 3; demo 2). With Adam a VGG19 "
           "checkpoint is 3x the weights (about 550 MB at 48 px, 1.6 GB at 224 px)")
    a("--summary-every", type=int, default=10,
      help="write training summaries every N steps (default 10)")
    a("--attention-images", type=int, default=4,
      help="validation images whose attention maps go to TensorBoard (default 4)")
    a("--seed", type=int, default=0, help="seed of the split, shuffling and init "
                                          "(default 0)")
    a("--bf16", action="store_true",
      help="compute in bfloat16 (oneDNN mixed precision: about 3.5x faster training "
           "on CPUs with AVX-512 BF16/AMX; weights and checkpoints stay float32)")
    a("--winograd", action="store_true",
      help="compute the 3x3 convolutions of stages 3-5 by Winograd F(2x2, 3x3): "
           "about 1.3x faster float32 training on CPU at 224 px, same weights and "
           "checkpoints (not with --bf16; not on GPU)")
    a("-q", "--quiet", action="store_true", help="no progress bar or info logs")
    return p


def check_precision_flags(args):
    """Refuses ``--winograd`` with ``--bf16`` (shared by the train and predict CLIs).

    bf16's speed comes from oneDNN's bfloat16 direct convolutions; the Winograd
    layers stay float32 under that rewrite and make the network slower
    (measured 0.52 against 0.19 s at batch 4).

    Raises:
      UsageError: both are given.
    """
    if args.bf16 and args.winograd:
        raise UsageError("--winograd and --bf16 do not go together: with --bf16 the "
                         "Winograd layers stay float32 and the network is slower than "
                         "with --bf16 alone; choose one")


def resolve_config(args):
    """Fills defaults that depend on the mode (demo or own data) and validates.

    Args:
      args: the parsed ``argparse.Namespace``.

    Returns:
      The same namespace, completed, with ``demo`` set.

    Raises:
      UsageError: for out-of-range values.
    """
    args.demo = args.data_dir is None
    if args.demo and args.val_dir:
        raise UsageError("--val-dir needs --data-dir")
    check_precision_flags(args)
    if args.demo:
        defaults = DEMO_SETTINGS
    else:
        defaults = dict(DATA_DEFAULTS, **(FINE_TUNE_RECIPE if args.weights is not None
                                          else SCRATCH_RECIPE))
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.train_dir is None:
        args.train_dir = DEMO_TRAIN_DIR if args.demo else DEFAULT_TRAIN_DIR
    positive = ("image_size", "batch_size", "epochs", "checkpoint_every",
                "keep_checkpoints", "summary_every")
    for key in positive:
        if getattr(args, key) < 1:
            raise UsageError("--%s must be >= 1, got %r" % (key.replace("_", "-"),
                                                            getattr(args, key)))
    if args.max_steps is not None and args.max_steps < 1:
        raise UsageError("--max-steps must be >= 1, got %r" % args.max_steps)
    if args.num_classes is not None and args.num_classes < 2:
        raise UsageError("--num-classes must be >= 2, got %r" % args.num_classes)
    if not args.learning_rate > 0 or not math.isfinite(args.learning_rate):
        raise UsageError("--learning-rate must be a positive number, got %r"
                         % args.learning_rate)
    if not args.weight_decay >= 0:
        raise UsageError("--weight-decay must be >= 0, got %r" % args.weight_decay)
    if not 0.0 <= args.dropout < 1.0:
        raise UsageError("--dropout is the rate of dropped units, in [0, 1), got %r"
                         % args.dropout)
    if not 0.0 < args.val_fraction < 1.0:
        raise UsageError("--val-fraction must be in (0, 1), got %r" % args.val_fraction)
    if args.warmup_epochs < 0:
        raise UsageError("--warmup-epochs must be >= 0, got %r" % args.warmup_epochs)
    if args.attention_images < 0:
        raise UsageError("--attention-images must be >= 0, got %r" % args.attention_images)
    if args.weights is not None and not os.path.isfile(args.weights):
        raise UsageError("--weights %r: no such file (tensorflow-vgg's README links "
                         "vgg19.npy)" % args.weights)
    export = os.path.join(args.train_dir, EXPORT_NAME)
    if (args.weights is not None and os.path.exists(export)
            and os.path.samefile(args.weights, export)):
        raise UsageError("--weights %r is this run's own export, which training "
                         "overwrites; copy it elsewhere first" % args.weights)
    args.trainable_scopes = [s.strip() for s in (args.trainable_scopes or "").split(",")
                             if s.strip()]
    return args


class Dataset(object):
    """The image lists of a run (see :func:`prepare_data`)."""

    def __init__(self, train_paths, train_labels, val_paths, val_labels,
                 class_names, num_corrupt, data_dir):
        self.train_paths, self.train_labels = train_paths, train_labels
        self.val_paths, self.val_labels = val_paths, val_labels
        self.class_names = class_names
        self.num_corrupt = num_corrupt
        self.data_dir = data_dir


def prepare_data(args, should_stop=None):
    """Scans, checks and splits the images of the run (writes the demo data if needed).

    Args:
      args: the resolved configuration.

    Returns:
      A :class:`Dataset`.

    Raises:
      FileNotFoundError, NotADirectoryError, ValueError: for a missing folder,
        no images, one class, no usable image left or mismatching class folders.
    """
    data_dir = args.data_dir
    if args.demo:
        data_dir = data_lib.write_demo_digits(os.path.join(args.train_dir, "demo-data"))
    paths, labels, class_names = data_lib.scan_image_folder(
        data_dir, "--data-dir" if not args.demo else "demo data", should_stop)
    paths, labels, bad = data_lib.check_images(paths, labels)
    if args.val_dir:
        val_paths, val_labels, val_names = data_lib.scan_image_folder(args.val_dir,
                                                                      "--val-dir", should_stop)
        if val_names != class_names:
            raise ValueError(
                "--val-dir %r has classes %s but --data-dir %r has %s; they must match"
                % (args.val_dir, _short_list(val_names), args.data_dir,
                   _short_list(class_names)))
        val_paths, val_labels, bad_val = data_lib.check_images(val_paths, val_labels)
        bad += bad_val
        train_paths, train_labels = paths, labels
        if not val_paths:
            raise ValueError("--val-dir %r: no readable image left" % args.val_dir)
    else:
        train_paths, train_labels, val_paths, val_labels = data_lib.split_train_val(
            paths, labels, args.val_fraction, args.seed)
    if not train_paths:
        raise ValueError("--data-dir %r: no readable image left" % data_dir)
    present = np.unique(train_labels)
    if len(present) < 2:
        raise ValueError("--data-dir %r: only one class has readable images; a "
                         "classifier needs at least 2" % data_dir)
    return Dataset(train_paths, train_labels, val_paths, val_labels, class_names, bad,
                   data_dir)


def _short_list(names, limit=6):
    names = list(names)
    text = ", ".join(names[:limit])
    return "[%s%s]" % (text, ", ..." if len(names) > limit else "")


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
    params, activations, side = 0, 0, image_size
    for stage in _VGG19_STAGES:
        for c_in, c_out in stage:
            params += 3 * 3 * c_in * c_out + c_out
            activations += side * side * c_out
        side = -(-side // 2)  # SAME pooling
        activations += side * side * stage[-1][1]
    params += (512 * side * side + 1) * 4096 + (4096 + 1) * 4096
    params += (4096 + 1) * num_classes + _CBAM_PARAMS
    slots = 2 if optimizer == "adam" else 1
    return params, 4 * (params * (2 + slots) + 2 * batch_size * activations)


def _available_memory():
    """``(bytes, source)`` this process may still use, or ``(None, None)`` if unknown.

    The smaller of /proc/meminfo's MemAvailable and, when an address-space cap
    (RLIMIT_AS) is set, the cap minus the address space already mapped.
    """
    import resource
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append((int(line.split()[1]) * 1024, "MemAvailable"))
    except (OSError, ValueError, IndexError):
        pass
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    if soft != resource.RLIM_INFINITY:
        try:
            with open("/proc/self/statm") as f:
                mapped = int(f.read().split()[0]) * resource.getpagesize()
        except (OSError, ValueError, IndexError):
            mapped = 0
        found.append((max(0, soft - mapped), "the address-space limit (RLIMIT_AS)"))
    return min(found) if found else (None, None)


def _gigabytes(n):
    return "%.1f GB" % (n / 1e9) if n < 1e12 else "%.1f TB" % (n / 1e12)


def check_model_fits(args, num_classes):
    """Refuses sizes the model cannot train at, before any op exists.

    Args:
      args: the resolved configuration (``image_size``, ``batch_size``,
        ``optimizer``).
      num_classes: number of classes.

    Raises:
      UsageError: a size above the absolute bounds, or an estimate (see
        :func:`estimate_memory`) above the memory this process may use.
    """
    params, need = estimate_memory(args.image_size, args.batch_size, num_classes,
                                   args.optimizer)
    what = ("--image-size %d with --batch-size %d needs about %s (%s parameters with %s, "
            "plus activations)" % (args.image_size, args.batch_size, _gigabytes(need),
                                   "{:,}".format(params), args.optimizer))
    if args.image_size > MAX_IMAGE_SIZE or args.batch_size > MAX_BATCH_SIZE:
        raise UsageError("%s; the limits are --image-size %d and --batch-size %d"
                         % (what, MAX_IMAGE_SIZE, MAX_BATCH_SIZE))
    available, source = _available_memory()
    if available is not None and need > available:
        raise UsageError("%s but only %s is available (%s); use a smaller --image-size "
                         "or --batch-size" % (what, _gigabytes(available), source))


def learning_rate_schedule(global_step, base_lr, total_steps, schedule, warmup_steps):
    """The learning rate at ``global_step`` (a graph tensor).

    Linear warmup from ``base_lr / warmup_steps`` to ``base_lr`` over
    ``warmup_steps``, then ``cosine`` (half cosine to 0 at ``total_steps``),
    ``step`` (x0.1 at 50% and 75% of ``total_steps``) or ``constant``.

    Args:
      global_step: int64 scalar tensor.
      base_lr: peak learning rate.
      total_steps: steps of the whole run (> 0).
      schedule: ``'cosine'``, ``'step'`` or ``'constant'``.
      warmup_steps: steps of linear warmup (>= 0).

    Returns:
      A float32 scalar tensor.

    Raises:
      ValueError: for an unknown ``schedule``.
    """
    import tensorflow as tf
    if schedule not in ("cosine", "step", "constant"):
        raise ValueError("schedule must be 'cosine', 'step' or 'constant', got %r"
                         % (schedule,))
    step = tf.cast(global_step, tf.float32)
    total = float(max(1, total_steps))
    warm = float(max(0, warmup_steps))
    if schedule == "cosine":
        progress = tf.clip_by_value((step - warm) / max(1.0, total - warm), 0.0, 1.0)
        lr = 0.5 * base_lr * (1.0 + tf.cos(math.pi * progress))
    elif schedule == "step":
        lr = base_lr * tf.where(step < 0.5 * total, 1.0,
                                tf.where(step < 0.75 * total, 0.1, 0.01))
    else:
        lr = tf.constant(base_lr, tf.float32)
    if warm > 0:
        lr = tf.where(step < warm, base_lr * (step + 1.0) / warm, lr)
    return tf.identity(tf.cast(lr, tf.float32), name="learning_rate")


def select_trainable(variables, scopes):
    """The variables whose names start with one of ``scopes`` (all if none).

    Args:
      variables: trainable variables.
      scopes: list of scope-name prefixes (e.g. ``['cbam', 'fc']``).

    Returns:
      The selected variables, in their original order.

    Raises:
      ValueError: if a prefix matches no variable (the message lists the scopes).
    """
    if not scopes:
        return list(variables)
    chosen = []
    for scope in scopes:
        match = [v for v in variables if v.op.name.startswith(scope)]
        if not match:
            tops = sorted({v.op.name.split("/")[0] for v in variables})
            raise ValueError("--trainable-scopes: %r matches no trainable variable; "
                             "scopes are %s" % (scope, ", ".join(tops)))
        chosen.extend(m for m in match if m not in chosen)
    return [v for v in variables if v in chosen]


def attention_summary(images, maps, titles=None, tag="validation/attention_map"):
    """The TensorBoard image of attention maps: :func:`vgg_patch.figure.attention_figure`.

    The same picture as ``vgg19-cbam-predict --attention-map`` (fixed 0-1 scale,
    colour bar, values, flat maps labelled), one row per image, as one PNG.

    Args:
      images: float [N, H, W, 3] in [0, 1].
      maps: float [N, h, w, 1], CBAM's spatial map.
      titles: N strings shown above the rows, or None.
      tag: the summary's tag.

    Returns:
      A ``tf.compat.v1.Summary`` holding one image.
    """
    import tensorflow as tf
    pixels = figure_lib.attention_figure(images, maps, titles=titles).pixels
    image = tf.compat.v1.Summary.Image(
        height=pixels.shape[0], width=pixels.shape[1], colorspace=3,
        encoded_image_string=figure_lib.encode_png(pixels))
    return tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag=tag, image=image)])


class _Graph(object):
    """The tensors and ops of a training run (attributes set by build_graph)."""


def build_graph(args, num_classes, steps_per_epoch, total_steps):
    """Builds the training graph in the current default graph.

    Args:
      args: the resolved configuration.
      num_classes: number of classes.
      steps_per_epoch: training steps of one epoch.
      total_steps: training steps of the whole run (for the schedule).

    Returns:
      A ``_Graph`` with the model, pipelines, train op, savers and summaries.

    Raises:
      ValueError, OSError: when the model cannot be built (bad weights file, an
        input size the weights do not allow, unknown trainable scope).
      TypeError: a bug, not bad input; left to show its traceback.
    """
    import tensorflow as tf
    from vgg_patch import Vgg19

    g = _Graph()
    tf.compat.v1.set_random_seed(args.seed)
    g.global_step = tf.compat.v1.train.get_or_create_global_step()
    with tf.compat.v1.variable_scope("train_state"):
        def state_var(name, value, dtype):
            return tf.compat.v1.get_variable(
                name, initializer=tf.constant(value, dtype), trainable=False)
        g.epoch = state_var("epoch", 0, tf.int64)
        g.epoch_position = state_var("epoch_position", 0, tf.int64)
        g.best_accuracy = state_var("best_val_accuracy", -1.0, tf.float32)
        g.best_epoch = state_var("best_epoch", -1, tf.int64)
    # Loop state, assigned through feeds just before each save.
    g.state_feed = {
        v: tf.compat.v1.placeholder(v.dtype.base_dtype, [], name=v.op.name.split("/")[-1])
        for v in (g.epoch, g.epoch_position, g.best_accuracy, g.best_epoch)}
    g.state_assign = tf.group(*[v.assign(ph) for v, ph in g.state_feed.items()])

    g.train_input = data_lib.ImagePipeline(args.image_size, args.batch_size, True,
                                           flip=args.flip, name="train_input")
    g.val_input = data_lib.ImagePipeline(args.image_size, args.batch_size, False,
                                         name="val_input")
    g.attention_input = data_lib.ImagePipeline(args.image_size,
                                               max(1, args.attention_images), False,
                                               name="attention_input")
    g.handle = tf.compat.v1.placeholder(tf.string, [], name="input_handle")
    ds = g.train_input.dataset
    iterator = tf.compat.v1.data.Iterator.from_string_handle(
        g.handle, tf.compat.v1.data.get_output_types(ds),
        tf.compat.v1.data.get_output_shapes(ds))
    g.images, g.labels = iterator.get_next()
    g.train_mode = tf.compat.v1.placeholder_with_default(False, [], name="train_mode")

    g.vgg = Vgg19(args.weights, trainable=True, dropout=args.dropout, attention="cbam",
                  num_classes=num_classes, winograd=args.winograd)
    g.vgg.build(g.images, g.train_mode)
    g.model_variables = [v for v in tf.compat.v1.global_variables()
                         if not v.op.name.startswith(("train_state/", "global_step"))]

    logits = g.vgg.fc8
    g.predictions = tf.argmax(logits, axis=-1, output_type=tf.int64)
    g.correct = tf.reduce_sum(tf.cast(tf.equal(g.predictions, g.labels), tf.int64))
    g.batch_count = tf.shape(g.labels, out_type=tf.int64)[0]
    g.accuracy = tf.reduce_mean(tf.cast(tf.equal(g.predictions, g.labels), tf.float32))
    g.xent = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=g.labels, logits=logits))

    trainable = select_trainable(tf.compat.v1.trainable_variables(),
                                 args.trainable_scopes)
    g.trainable = trainable
    decayed = [v for v in trainable if v.shape.ndims is not None and v.shape.ndims >= 2]
    if args.weight_decay > 0 and decayed:
        g.l2 = args.weight_decay * tf.add_n([tf.nn.l2_loss(v) for v in decayed])
    else:
        g.l2 = tf.constant(0.0)
    g.loss = tf.identity(g.xent + g.l2, name="loss")

    warmup = int(round(args.warmup_epochs * steps_per_epoch))
    g.learning_rate = learning_rate_schedule(g.global_step, args.learning_rate,
                                             total_steps, args.lr_schedule, warmup)
    if args.optimizer == "adam":
        opt = tf.compat.v1.train.AdamOptimizer(g.learning_rate)
    else:
        opt = tf.compat.v1.train.MomentumOptimizer(g.learning_rate, args.momentum)
    grads_and_vars = opt.compute_gradients(g.loss, var_list=trainable)
    grads = [gv[0] for gv in grads_and_vars if gv[0] is not None]
    # A non-finite loss or gradient fails the step BEFORE any weight, optimizer
    # slot or the global step changes (every update depends on the check).
    finite = tf.debugging.check_numerics(
        g.loss + tf.linalg.global_norm(grads) * 0.0, _NAN_TAG)
    with tf.control_dependencies([finite]):
        grads_and_vars = [(tf.identity(gr) if gr is not None else None, v)
                          for gr, v in grads_and_vars]
    # BatchNorm statistics (CBAM) update with the train op, but only for the
    # layers being trained: a frozen block keeps its statistics too.
    trained_scopes = tuple(args.trainable_scopes) or ("",)
    update_ops = [op for op in tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
                  if op.name.startswith(trained_scopes)]
    with tf.control_dependencies(update_ops):
        apply_op = opt.apply_gradients(grads_and_vars, global_step=g.global_step)
    # The moving-statistics updates cannot wait for the check: the network
    # builds them next to its forward pass, inside its own conditionals. So
    # each step that passes ends by copying the statistics aside, and a step
    # that fails puts them back (run_step): a failing step changes nothing.
    trainable_names = {v.op.name for v in tf.compat.v1.trainable_variables()}
    stats = [v for v in g.model_variables if v.op.name not in trainable_names]
    with tf.compat.v1.variable_scope("nan_guard"):
        copies = [tf.compat.v1.Variable(tf.zeros(v.shape, v.dtype.base_dtype),
                                        trainable=False, use_resource=True,
                                        collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES],
                                        name=v.op.name.replace("/", "_"))
                  for v in stats]

    def copy(sources, targets):
        # DeepCopy: a RefVariable's value shares its buffer, which the next
        # update would change in place in the copy too.
        return [t.assign(tf.raw_ops.DeepCopy(x=s.read_value()))
                for s, t in zip(sources, targets)]

    with tf.control_dependencies([apply_op]):
        g.train_op = tf.group(apply_op, *copy(stats, copies), name="train_op")
    g.copy_statistics = tf.group(*copy(stats, copies))
    g.restore_statistics = tf.group(*copy(copies, stats))

    tf.compat.v1.summary.scalar("train/loss", g.loss)
    tf.compat.v1.summary.scalar("train/cross_entropy", g.xent)
    tf.compat.v1.summary.scalar("train/accuracy", g.accuracy)
    tf.compat.v1.summary.scalar("train/learning_rate", g.learning_rate)
    g.train_summary = tf.compat.v1.summary.merge_all()
    # Drawn in Python by vgg_patch.figure, like vgg19-cbam-predict's PNG.
    g.attention_fetch = [g.images, g.vgg.attention_map]

    # Checked before every save, on every variable saved (weights, moving
    # statistics, optimizer slots, loop state): a step can leave a finite loss
    # but infinite weights.
    g.saved_variables = tf.compat.v1.global_variables()
    g.weights_finite = tf.reduce_all(tf.stack(
        [tf.reduce_all(tf.math.is_finite(v)) for v in g.saved_variables
         if v.dtype.base_dtype.is_floating]))
    g.saver = tf.compat.v1.train.Saver(g.saved_variables, max_to_keep=args.keep_checkpoints,
                                       save_relative_paths=True)
    g.best_saver = tf.compat.v1.train.Saver(g.model_variables, max_to_keep=1,
                                            save_relative_paths=True)
    g.init = tf.compat.v1.global_variables_initializer()
    return g


_CKPT_RE = re.compile(r"^%s-(\d+)\.index$" % re.escape(CKPT_NAME))


def checkpoint_candidates(train_dir):
    """Complete-looking checkpoints of ``train_dir``, newest step first.

    A checkpoint counts only if its ``.index`` (written last) and all its
    ``.data-*`` shards exist; half-written ones (a kill mid-save) are skipped.
    The ``checkpoint`` state file is not trusted: a kill between writing the
    files and updating it must not lose the newest checkpoint.

    Args:
      train_dir: the run's folder.

    Returns:
      A list of ``(step, prefix)`` pairs.
    """
    if not os.path.isdir(train_dir):
        return []
    found = []
    names = set(os.listdir(train_dir))
    for name in names:
        match = _CKPT_RE.match(name)
        if not match:
            continue
        prefix = name[:-len(".index")]
        shards = [n for n in names if n.startswith(prefix + ".data-")]
        total = None
        for shard in shards:
            m = re.match(r".*\.data-(\d+)-of-(\d+)$", shard)
            if m:
                total = int(m.group(2))
        complete = [s for s in shards if re.match(r".*\.data-\d+-of-\d+$", s)]
        if total is None or len(complete) != total:
            logger.warning("ignoring incomplete checkpoint %s (missing data files)",
                           os.path.join(train_dir, prefix))
            continue
        found.append((int(match.group(1)), os.path.join(train_dir, prefix)))
    return sorted(found, reverse=True)


def restore_latest(sess, saver, train_dir, variables=None):
    """Restores the newest checkpoint that loads, falling back to older ones.

    A checkpoint whose files are damaged (a kill mid-save, a full disk) is
    skipped with a warning. One that reads fine but does not fit the graph
    (written with other options) is an error, not silently skipped: starting
    over would throw the run away.

    Args:
      sess: the session.
      saver: a ``tf.compat.v1.train.Saver``.
      train_dir: the run's folder.
      variables: the variables the checkpoint must hold (names and shapes are
        checked before restoring); default: none checked.

    Returns:
      The restored prefix, or None if there is no usable checkpoint.

    Raises:
      UsageError: the newest readable checkpoint does not fit the graph.
    """
    import tensorflow as tf
    candidates = checkpoint_candidates(train_dir)
    for step, prefix in candidates:
        try:
            saved = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
        except (tf.errors.OpError, ValueError) as err:
            logger.warning("checkpoint %s does not load (%s); trying an older one",
                           prefix, str(err).splitlines()[0])
            continue
        for var in variables or ():
            name, shape = var.op.name, var.shape.as_list()
            if name not in saved:
                raise UsageError(
                    "checkpoint %s was written with other options: it has no variable %s "
                    "(changed --optimizer or --trainable-scopes?); resume with the "
                    "original options or use another --train-dir" % (prefix, name))
            if list(saved[name]) != shape:
                raise UsageError(
                    "checkpoint %s was written with other options: %s has shape %s, not "
                    "%s (changed --image-size or the classes?); resume with the original "
                    "options or use another --train-dir" % (prefix, name, saved[name],
                                                           shape))
        try:
            saver.restore(sess, prefix)
        except (tf.errors.OpError, ValueError) as err:
            logger.warning("checkpoint %s does not load (%s); trying an older one",
                           prefix, str(err).splitlines()[0])
            continue
        # Let the saver manage (and eventually delete) the older ones.
        saver.recover_last_checkpoints([p for s_, p in sorted(candidates) if s_ <= step])
        return prefix
    return None


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def check_or_write_run_files(args, dataset, num_classes):
    """Writes ``classes.txt`` and ``run.json``; first checks them against a run to resume.

    The check applies only when ``--train-dir`` holds checkpoints: files left by
    a run that never saved one (e.g. refused weights) are simply replaced.

    Raises:
      UsageError: if the train dir holds a run with other classes or image size.
    """
    classes_path = os.path.join(args.train_dir, CLASSES_FILE)
    run_path = os.path.join(args.train_dir, RUN_FILE)
    settings = {"image_size": args.image_size, "num_classes": num_classes,
                "attention": "cbam", "weights": args.weights,
                "data_dir": dataset.data_dir, "val_dir": args.val_dir,
                "seed": args.seed, "num_train": len(dataset.train_paths),
                "num_val": len(dataset.val_paths), "batch_size": args.batch_size}
    resuming = bool(checkpoint_candidates(args.train_dir))
    if resuming and os.path.exists(classes_path):
        with open(classes_path, encoding="utf-8") as f:
            old = [line.rstrip("\n") for line in f if line.strip()]
        if old != list(dataset.class_names):
            raise UsageError(
                "--train-dir %r holds a run on classes %s, not %s; use another "
                "--train-dir" % (args.train_dir, _short_list(old),
                                 _short_list(dataset.class_names)))
    if resuming and os.path.exists(run_path):
        old = _read_json(run_path)
        for key in ("image_size", "num_classes"):
            if old.get(key) != settings[key]:
                raise UsageError("--train-dir %r holds a run with %s=%r, not %r; use "
                                 "another --train-dir" % (args.train_dir, key,
                                                          old.get(key), settings[key]))
        for key in ("num_train", "seed", "batch_size"):
            if old.get(key) != settings[key]:
                logger.warning("%s changed since the run in %s was started (%r -> %r): "
                               "the resumed epoch position is approximate", key,
                               args.train_dir, old.get(key), settings[key])
    try:
        os.makedirs(args.train_dir, exist_ok=True)
        _atomic_write(classes_path, "".join(n + "\n" for n in dataset.class_names))
        _atomic_write(run_path, json.dumps(settings, indent=2) + "\n")
    except OSError as err:
        raise UsageError("--train-dir %r cannot be written: %s" % (args.train_dir,
                                                                  err)) from None


def _atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


# What a killed or failed save can leave in a run's folders: TensorFlow's
# checkpoint temp files (a data or index file, or the state file, renamed only
# once complete), save_npy's export temp file and _atomic_write's.
_TEMP_FILE_RE = re.compile(
    r"^(%s-\d+\.(index|data-\d+-of-\d+)\.tempstate\d+|checkpoint\.tmp[0-9a-f]+"
    r"|\.%s\..+\.tmp|(%s|%s)\.tmp)$"
    % (re.escape(CKPT_NAME), re.escape(os.path.basename(EXPORT_NAME)),
       re.escape(CLASSES_FILE), re.escape(RUN_FILE)))


def remove_temp_files(train_dir):
    """Deletes the temp files a killed or failed save left in ``train_dir``.

    Only names matching the temp files the trainer's own writers create
    (``model.ckpt-N.data-*.tempstate*``, ``checkpoint.tmp*``, export and run
    file ``*.tmp``) in ``train_dir``, ``best/`` and ``export/``; nothing else.

    Returns:
      The removed paths.
    """
    removed = []
    for folder in (train_dir, os.path.join(train_dir, "best"),
                   os.path.dirname(os.path.join(train_dir, EXPORT_NAME))):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            if _TEMP_FILE_RE.match(name) and os.path.isfile(path):
                try:
                    os.remove(path)
                    removed.append(path)
                except OSError as err:
                    logger.warning("could not remove the temp file %s: %s", path, err)
    if removed:
        logger.info("removed %d temp file(s) left by an earlier save", len(removed))
    return removed


_REASON_RE = re.compile(r"^(?P<path>\S+?)(\.tempstate\d+)?; (?P<reason>[^;]+)$")


def write_failed(what, path, err, last_good):
    """The one-line ``TrainingFailed`` for a write that raised ``err``.

    Names the file (from the error when TensorFlow reports it, else ``path``),
    the operating system's reason (e.g. "No space left on device") and the
    last good checkpoint.

    Args:
      what: what was being written, e.g. ``'the checkpoint of step 6'``.
      path: the file or prefix being written.
      err: the ``OSError`` or ``tf.errors.OpError``.
      last_good: the last good checkpoint's prefix, or None.

    Returns:
      A ``TrainingFailed`` to raise.
    """
    reason = None
    if isinstance(err, OSError):
        path = err.filename or path
        reason = err.strerror or str(err)
    else:
        lines = [line.strip() for line in str(getattr(err, "message", err)).splitlines()]
        for line in lines:
            match = _REASON_RE.match(line)
            if match:
                path, reason = match.group("path"), match.group("reason").strip()
                break
        else:
            known = [os.strerror(e) for e in (errno.ENOSPC, errno.EIO, errno.EDQUOT,
                                              errno.EROFS, errno.EACCES, errno.ENOENT)]
            reason = next((k for k in known if any(k in line for line in lines)),
                          next((line for line in lines
                                if line and line != "Graph execution error:"),
                               type(err).__name__))
    return TrainingFailed("could not write %s %s: %s; the previous checkpoint %s is intact"
                          % (what, path, reason, last_good or "(none)"))


def _check_stop(stop, when):
    """Raises ``Interrupted`` (nothing saved) if a stop was requested before training."""
    if stop is not None and stop.requested:
        raise Interrupted("interrupted %s, before any training step: nothing to save; "
                          "run the same command again to start or resume" % when)


class _StopRequest(object):
    """Turns SIGINT/SIGTERM into a flag checked between steps and phases (main thread only).

    The trainer checks it between training steps, between validation batches,
    after building the graph, after initialising or restoring, and around the
    export. A second signal raises ``KeyboardInterrupt`` at once.
    """

    def __init__(self):
        self.signum = None
        self._previous = {}

    def _handler(self, signum, frame):
        if self.signum is not None:  # second Ctrl-C: stop now
            raise KeyboardInterrupt(
                "second %s: stopped at once, without saving; the newest complete "
                "checkpoint is intact and the next run resumes from it"
                % signal.Signals(signum).name)
        self.signum = signum
        logger.warning("%s received: stopping at the end of this step or phase, saving "
                       "a checkpoint if training has begun (press Ctrl-C again to stop "
                       "at once)",
                       signal.Signals(signum).name)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False

    @property
    def requested(self):
        return self.signum is not None


def run_step(sess, g, fetches, feed_dict):
    """Runs one training step: ``fetches`` (holding ``g.train_op``) with ``feed_dict``.

    A step whose loss or gradient is NaN or infinite changes no variable: the
    graph stops it before any weight, optimizer slot or the global step is
    updated, and the batch-norm moving statistics, which the network updates
    alongside its forward pass, are put back as the last good step left them.
    ``g.copy_statistics`` must have run once after the variables were
    initialised or restored.

    Args:
      sess: the session of ``g``.
      g: the ``_Graph`` of :func:`build_graph`.
      fetches: what to fetch; should hold ``g.train_op``.
      feed_dict: the step's feeds.

    Returns:
      The fetched values, or None if the step was not finite (nothing applied).
    """
    import tensorflow as tf
    try:
        return sess.run(fetches, feed_dict)
    except tf.errors.InvalidArgumentError as err:
        if _NAN_TAG not in str(err):
            raise
    sess.run(g.restore_statistics)
    return None


def train(args, stop=None):
    """Runs (or resumes) training as configured; exports the best weights.

    Args:
      args: the resolved configuration (:func:`resolve_config`).
      stop: a ``_StopRequest`` (or anything with ``requested``); default: never.

    Returns:
      A dict with ``best_accuracy``, ``best_epoch``, ``global_step``,
      ``export_path``, ``train_dir`` and ``num_corrupt``.

    Raises:
      UsageError: bad input (folders, weights, settings).
      TrainingFailed: the loss became NaN or infinite, or a checkpoint, summary
        or the export could not be written (temp files are removed).
      Interrupted: a stop was requested; a checkpoint was saved first if
        training had begun.
    """
    import tensorflow as tf

    try:
        dataset = prepare_data(args, lambda: stop is not None and stop.requested)
    except (OSError, ValueError) as err:
        raise UsageError(str(err)) from None
    num_classes = len(dataset.class_names)
    if args.num_classes is not None and args.num_classes != num_classes:
        raise UsageError("--num-classes %d does not match the %d class folders of %r"
                         % (args.num_classes, num_classes, dataset.data_dir))
    check_model_fits(args, num_classes)
    check_or_write_run_files(args, dataset, num_classes)
    remove_temp_files(args.train_dir)
    n_train, n_val = len(dataset.train_paths), len(dataset.val_paths)
    steps_per_epoch = int(math.ceil(n_train / float(args.batch_size)))
    total_steps = steps_per_epoch * args.epochs
    if args.max_steps is not None:
        total_steps = min(total_steps, args.max_steps)
    logger.info("%d training and %d validation images, %d classes%s; %d steps per "
                "epoch, %d steps in all", n_train, n_val, num_classes,
                " (%d corrupt skipped)" % dataset.num_corrupt if dataset.num_corrupt
                else "", steps_per_epoch, total_steps)

    _check_stop(stop, "before building the graph")
    logger.info("building the graph")
    graph = tf.Graph()
    with graph.as_default():
        try:
            g = build_graph(args, num_classes, steps_per_epoch, total_steps)
        except (OSError, ValueError) as err:  # WeightsFileError is a ValueError
            raise UsageError(str(err).splitlines()[0] if str(err) else repr(err)) from None
        _check_stop(stop, "while building the graph")
        graph.finalize()
        with tf.compat.v1.Session(graph=graph, config=session_config(args.bf16)) as sess:
            return _run(sess, g, args, dataset, steps_per_epoch, total_steps, stop)


def _run(sess, g, args, dataset, steps_per_epoch, total_steps, stop):
    import tensorflow as tf
    ckpt_prefix = os.path.join(args.train_dir, CKPT_NAME)
    best_dir = os.path.join(args.train_dir, "best")
    restored = restore_latest(sess, g.saver, args.train_dir,
                              sess.graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES))
    _check_stop(stop, "while restoring the checkpoint")
    if restored is None:
        sess.run(g.init)
        logger.info("starting from %s", "weights %s" % args.weights if args.weights
                    else "scratch (random initialisation)")
    sess.run(g.copy_statistics)
    _check_stop(stop, "while initialising")
    step, epoch, position, best_acc, best_epoch = sess.run(
        [g.global_step, g.epoch, g.epoch_position, g.best_accuracy, g.best_epoch])
    step, epoch, position, best_epoch = int(step), int(epoch), int(position), int(best_epoch)
    best_acc = float(best_acc)
    if restored is not None:
        logger.info("resuming from %s: step %d, epoch %d, %d images into the epoch",
                    restored, step, epoch + 1, position)

    last_saved = [None]

    @contextlib.contextmanager
    def writing(what, path, errors=(tf.errors.OpError, OSError)):
        try:
            yield
        except errors as err:  # disk full, I/O error, ...
            remove_temp_files(args.train_dir)
            raise write_failed(what, path, err, last_saved[0] or restored) from None

    with writing("the TensorBoard summaries in", args.train_dir):
        writer = tf.compat.v1.summary.FileWriter(
            args.train_dir, graph=sess.graph if restored is None else None)
        # Tell TensorBoard to drop events after this step left by a killed run.
        writer.add_session_log(
            tf.compat.v1.SessionLog(status=tf.compat.v1.SessionLog.START), global_step=step)
    handles = dict(zip(("train", "val", "attention"), sess.run(
        [p.iterator.string_handle() for p in (g.train_input, g.val_input,
                                              g.attention_input)])))
    n_train = len(dataset.train_paths)

    def save(reason):
        if not sess.run(g.weights_finite):
            raise TrainingFailed(
                "the weights became NaN or infinite at step %d (learning rate %.3g too "
                "high?); not saved; last good checkpoint: %s"
                % (step, sess.run(g.learning_rate), last_saved[0] or restored or "none"))
        sess.run(g.state_assign, {g.state_feed[g.epoch]: epoch,
                                  g.state_feed[g.epoch_position]: position,
                                  g.state_feed[g.best_accuracy]: best_acc,
                                  g.state_feed[g.best_epoch]: best_epoch})
        with writing("the checkpoint of step %d:" % step, "%s-%d" % (ckpt_prefix, step)):
            path = g.saver.save(sess, ckpt_prefix, global_step=step)
        with writing("the TensorBoard summaries in", args.train_dir):
            writer.flush()
        last_saved[0] = path
        logger.debug("saved %s (%s)", path, reason)
        return path

    def evaluate():
        g.val_input.initialize(sess, dataset.val_paths, dataset.val_labels)
        correct = count = 0
        xent_sum = 0.0
        while True:
            if stop_requested():
                raise Interrupted()
            try:
                c, n, xent = sess.run([g.correct, g.batch_count, g.xent],
                                      {g.handle: handles["val"]})
            except tf.errors.OutOfRangeError:
                break
            correct += int(c)
            count += int(n)
            xent_sum += float(xent) * int(n)
        if count < len(dataset.val_paths):
            logger.warning("%d validation image(s) failed to decode in TensorFlow and "
                           "were skipped", len(dataset.val_paths) - count)
        return correct / float(max(1, count)), xent_sum / float(max(1, count))

    def summarize_attention():
        if args.attention_images <= 0:
            return
        k = min(args.attention_images, len(dataset.val_paths))
        g.attention_input.initialize(sess, dataset.val_paths[:k], dataset.val_labels[:k])
        try:
            images, maps = sess.run(g.attention_fetch, {g.handle: handles["attention"]})
        except tf.errors.OutOfRangeError:  # every one of them failed to decode
            logger.warning("no attention-map summary: the first %d validation images "
                           "failed to decode", k)
            return
        titles = None
        if len(images) == k:  # else some failed to decode: names unknown
            titles = [os.path.basename(p) for p in dataset.val_paths[:k]]
        with writing("the TensorBoard summaries in", args.train_dir):
            writer.add_summary(attention_summary(images, maps, titles), step)
        logger.info("TensorBoard attention maps, step %d: %s", step,
                    figure_lib.describe_maps(maps))

    def end_of_epoch_validation():
        nonlocal best_acc, best_epoch
        t0 = time.time()
        acc, xent = evaluate()
        seconds = time.time() - t0
        with writing("the TensorBoard summaries in", args.train_dir):
            writer.add_summary(tf.compat.v1.Summary(value=[
                tf.compat.v1.Summary.Value(tag="validation/accuracy", simple_value=acc),
                tf.compat.v1.Summary.Value(tag="validation/cross_entropy",
                                           simple_value=xent)]), step)
        if stop_requested():
            raise Interrupted()
        summarize_attention()
        improved = acc > best_acc
        if improved:
            best_acc, best_epoch = acc, epoch
            best_prefix = os.path.join(best_dir, CKPT_NAME)
            with writing("the best checkpoint:", "%s-%d" % (best_prefix, step)):
                g.best_saver.save(sess, best_prefix, global_step=step,
                                  latest_filename="checkpoint")
        logger.info("epoch %d/%d: validation accuracy %.3f (best %.3f, epoch %d), "
                    "step %d, %.1f s validating", epoch + 1, args.epochs, acc, best_acc,
                    best_epoch + 1, step, seconds)
        return acc

    def stop_requested():
        return stop is not None and stop.requested

    start_step = step
    try:
        while step < total_steps and epoch < args.epochs:
            order = data_lib.epoch_order(n_train, args.seed, epoch)[position:]
            exhausted = len(order) == 0
            if not exhausted:
                g.train_input.initialize(sess, [dataset.train_paths[i] for i in order],
                                         dataset.train_labels[order])
            done_in_epoch = steps_per_epoch - int(math.ceil(len(order) / float(args.batch_size)))
            bar = None
            if not args.quiet and not exhausted:
                bar = ProgressBar(steps_per_epoch, prefix="epoch %d/%d" % (epoch + 1,
                                                                          args.epochs))
            t_pass, images_timed, seen = time.time(), 0, 0
            while not exhausted and step < total_steps and not stop_requested():
                fetch = [g.train_op, g.loss, g.accuracy, g.batch_count]
                want_summary = (step + 1) % args.summary_every == 0
                if want_summary:
                    fetch.append(g.train_summary)
                try:
                    out = run_step(sess, g, fetch, {g.handle: handles["train"],
                                                    g.train_mode: True})
                except tf.errors.OutOfRangeError:
                    exhausted = True
                    break
                if out is None:
                    raise TrainingFailed(
                        "the loss became NaN or infinite at step %d (learning rate "
                        "%.3g too high?); stopped without applying that step; last "
                        "good checkpoint: %s" % (step + 1, sess.run(g.learning_rate),
                                                 last_saved[0] or restored or "none"))
                _, loss, acc, count = out[:4]
                step += 1
                done_in_epoch += 1
                position += int(count)
                seen += int(count)
                images_timed += int(count)
                if want_summary:
                    with writing("the TensorBoard summaries in", args.train_dir):
                        writer.add_summary(out[4], step)
                if bar is not None:
                    bar.update(done_in_epoch, {"loss": float(loss), "acc": float(acc)},
                               rate=images_timed / max(1e-9, time.time() - t_pass))
                if position >= n_train:
                    exhausted = True
                elif step % args.checkpoint_every == 0 and step < total_steps:
                    save("every %d steps" % args.checkpoint_every)
            if bar is not None:
                bar.close()
            if exhausted and seen < len(order):
                logger.warning("%d training image(s) failed to decode in TensorFlow and "
                               "were skipped", len(order) - seen)
            if stop_requested():
                raise Interrupted()
            if not exhausted:
                break  # --max-steps reached inside the epoch
            end_of_epoch_validation()
            epoch, position = epoch + 1, 0
            save("end of epoch")
            if stop_requested():
                raise Interrupted()
        if best_epoch < 0:
            # Stopped by --max-steps before any epoch ended: validate what we have.
            end_of_epoch_validation()
        if step != start_step and not (last_saved[0] or "").endswith("-%d" % step):
            save("end of run")
    except Interrupted:
        if step == start_step:  # no training step in this run: nothing new to save
            with writing("the TensorBoard summaries in", args.train_dir):
                writer.close()
            raise Interrupted("interrupted before any training step: nothing to save%s; "
                              "run the same command again to resume"
                              % ("; checkpoint %s is intact" % restored if restored
                                 else "")) from None
        path = last_saved[0]
        if path is None or not path.endswith("-%d" % step):
            path = save("interrupted")
        with writing("the TensorBoard summaries in", args.train_dir):
            writer.close()
        raise Interrupted("interrupted: saved checkpoint %s (step %d); run the same "
                          "command again to resume" % (path, step)) from None
    with writing("the TensorBoard summaries in", args.train_dir):
        writer.close()
    if stop_requested():
        raise Interrupted("interrupted before the export: checkpoint %s (step %d) is "
                          "saved; run the same command again to export"
                          % (last_saved[0] or restored, step))
    export_path = os.path.join(args.train_dir, EXPORT_NAME)
    with writing("the export", export_path, OSError):  # TF errors: reading, not writing
        export_path = export_best(sess, g, args, best_dir)
    if stop_requested():
        raise Interrupted("interrupted during the export, which was completed: %s; "
                          "checkpoint %s (step %d)" % (export_path,
                                                      last_saved[0] or restored, step))
    return {"best_accuracy": best_acc, "best_epoch": best_epoch, "global_step": step,
            "export_path": export_path, "train_dir": args.train_dir,
            "num_corrupt": dataset.num_corrupt}


def export_best(sess, g, args, best_dir):
    """Restores the best-validation weights and writes them with ``Vgg19.save_npy``.

    Returns:
      The path of the written ``.npy`` file.
    """
    import tensorflow as tf
    best = tf.train.latest_checkpoint(best_dir)
    if best is not None:
        g.best_saver.restore(sess, best)
    path = os.path.join(args.train_dir, EXPORT_NAME)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return g.vgg.save_npy(sess, path)  # writes a temporary file, then renames it


def _setup_logging(quiet):
    """Sends this package's log records to stderr for the duration of a CLI call."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    pkg_logger = logging.getLogger("vgg_patch")
    previous = pkg_logger.level
    pkg_logger.addHandler(handler)
    pkg_logger.setLevel(logging.WARNING if quiet else logging.INFO)
    pkg_logger.propagate = False
    # TensorFlow's own deprecation chatter (e.g. from Saver) is not for users.
    tf_logger = logging.getLogger("tensorflow")
    tf_previous = tf_logger.level
    tf_logger.setLevel(logging.ERROR)

    def undo():
        pkg_logger.removeHandler(handler)
        pkg_logger.setLevel(previous)
        pkg_logger.propagate = True
        tf_logger.setLevel(tf_previous)
    return undo


def tensorboard_command():
    """How the user's shell starts TensorBoard: ``tensorboard`` when it is on
    PATH, else the one installed beside this Python (``run.py demo`` runs the
    trainer from the project's .venv without activating it)."""
    if shutil.which("tensorboard"):
        return "tensorboard"
    beside = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    return shlex.quote(beside) if os.path.exists(beside) else "tensorboard"


def main(argv=None):
    """Entry point of ``vgg19-cbam-train``.

    Args:
      argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
      The exit status: 0 done, 1 training failed, 2 bad input, 130 interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    undo_logging = _setup_logging(args.quiet)
    try:
        try:
            args = resolve_config(args)
        except UsageError as err:
            parser.print_usage(sys.stderr)
            print("%s: error: %s" % (PROG, err), file=sys.stderr)
            return EXIT_USAGE
        t0 = time.time()
        try:
            with _StopRequest() as stop:
                result = train(args, stop)
        except UsageError as err:
            print("%s: error: %s" % (PROG, err), file=sys.stderr)
            return EXIT_USAGE
        except TrainingFailed as err:
            print("%s: error: %s" % (PROG, err), file=sys.stderr)
            return EXIT_FAILED
        except (Interrupted, KeyboardInterrupt) as err:
            print("%s: %s" % (PROG, str(err) or "interrupted before a checkpoint could be "
                              "saved; the previous checkpoint is intact"), file=sys.stderr)
            return EXIT_INTERRUPTED
        print("best validation accuracy: %.3f (epoch %d; %d steps, %s); best weights: %s; "
              "checkpoints, classes.txt and TensorBoard logs: %s; TensorBoard: "
              "%s --logdir %s"
              % (result["best_accuracy"], result["best_epoch"] + 1,
                 result["global_step"], format_seconds(time.time() - t0),
                 result["export_path"], result["train_dir"],
                 tensorboard_command(), shlex.quote(result["train_dir"])))
        return EXIT_OK
    finally:
        undo_logging()


def format_seconds(seconds):
    """``'73 s'`` or ``'4.2 min'``."""
    return "%.0f s" % seconds if seconds < 120 else "%.1f min" % (seconds / 60.0)


if __name__ == "__main__":
    sys.exit(main())
