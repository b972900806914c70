"""A run's configuration: the recipes, the defaults of each mode, validation, memory.

:func:`resolve_config` turns the parsed command line into the complete
configuration of a run (the namespace every other training module reads);
:func:`check_model_fits` refuses sizes the machine cannot train at, before any
op exists. No TensorFlow here.
"""
import math
import os

from vgg_patch.cli.common import UsageError, check_precision_flags
from vgg_patch.fastpath import choose_conv_path
from vgg_patch.training.network import Vgg19Network
from vgg_patch.training import workers as workers_lib
from vgg_patch.training.run_dir import DEFAULT_TRAIN_DIR, DEMO_TRAIN_DIR, EXPORT_NAME

# The optimisation recipe for one's own data depends on where training starts.
# From scratch (no --weights): Adam 1e-4 after one epoch of linear warm-up, no
# weight decay, chosen by measurement (bench/from_scratch.py; README, "Training
# from scratch"): momentum SGD barely moves or diverges there, and without the
# warm-up Adam's first full-size steps throw the loss far above ln C.
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

# Absolute bounds, whatever the machine: fc6 alone would hold 34 G weights at
# --image-size 4096 (ceil(4096 / 32) ** 2 * 512 * 4096).
MAX_IMAGE_SIZE = 4096
MAX_BATCH_SIZE = 65536


def _apply_defaults(args):
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


def _check_ranges(args):
    """Raises UsageError for the first out-of-range number."""
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
    peer_timeout = getattr(args, "peer_timeout", 60.0)
    if not 0 < peer_timeout < math.inf:
        raise UsageError("--peer-timeout must be a positive number of seconds, got %r"
                         % peer_timeout)


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
    _apply_defaults(args)
    path = choose_conv_path(args.winograd, args.bf16, args.image_size, training=True)
    args.winograd, args.conv_path = path.winograd, path.reason
    _check_ranges(args)
    if (args.weights is not None and not os.path.isfile(args.weights)
            and not workers_lib.receives_weights()):  # only the chief reads it
        raise UsageError("--weights %r: no such file (tensorflow-vgg's README links "
                         "vgg19.npy)" % args.weights)
    export = os.path.join(args.train_dir, EXPORT_NAME)
    if (args.weights is not None and os.path.exists(export)
            and os.path.exists(args.weights) and os.path.samefile(args.weights, export)):
        raise UsageError("--weights %r is this run's own export, which training "
                         "overwrites; copy it elsewhere first" % args.weights)
    args.trainable_scopes = [s.strip() for s in (args.trainable_scopes or "").split(",")
                             if s.strip()]
    return args


def available_memory():
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


def check_model_fits(args, num_classes, network=None):
    """Refuses sizes the network cannot train at, before any op exists.

    Args:
      args: the resolved configuration (``image_size``, ``batch_size``,
        ``optimizer``).
      num_classes: number of classes.
      network: the network to train (see :mod:`vgg_patch.training.network`),
        whose ``estimate_memory`` gives the estimate; default: VGG19+CBAM
        with ``num_classes`` classes.

    Raises:
      UsageError: a size above the absolute bounds, or an estimate above the
        memory this process may use.
    """
    if network is None:
        network = Vgg19Network(num_classes)
    params, need = network.estimate_memory(args.image_size, args.batch_size,
                                           args.optimizer)
    what = ("--image-size %d with --batch-size %d needs about %s (%s parameters with %s, "
            "plus activations)" % (args.image_size, args.batch_size, _gigabytes(need),
                                   "{:,}".format(params), args.optimizer))
    if args.image_size > MAX_IMAGE_SIZE or args.batch_size > MAX_BATCH_SIZE:
        raise UsageError("%s; the limits are --image-size %d and --batch-size %d"
                         % (what, MAX_IMAGE_SIZE, MAX_BATCH_SIZE))
    available, source = available_memory()
    if available is not None and need > available:
        raise UsageError("%s but only %s is available (%s); use a smaller --image-size "
                         "or --batch-size" % (what, _gigabytes(available), source))
