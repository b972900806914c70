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

This module is the command line: the parser, ``main`` and the last line. The
training itself is :func:`vgg_patch.training.run.train` (see
:mod:`vgg_patch.training`), imported by name; nothing here imports TensorFlow,
so ``--help`` is fast.
"""
import argparse
import logging
import os
import shlex
import shutil
import sys
import time

from vgg_patch.cli.common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE,
                                  Interrupted, TrainingFailed, UsageError,
                                  add_precision_flags, report_error, setup_logging)
from vgg_patch.fastpath import bf16_hint
from vgg_patch.progress import format_duration
from vgg_patch.training import run_dir
from vgg_patch.training.config import resolve_config
from vgg_patch.training.run import train
from vgg_patch.training.signals import StopRequest
from vgg_patch.training.workers import PeerLost, restart_process

PROG = "vgg19-cbam-train"
_LOG = logging.getLogger("vgg_patch.train")

_DESCRIPTION = ("Retrain tensorflow-vgg's VGG19 with CBAM after pool5 on a folder "
                "of images (one subfolder per class), in graph mode. With no "
                "--data-dir it runs a short built-in demo on scikit-learn's "
                "handwritten digits, from scratch. The optimisation defaults "
                "depend on --weights: from scratch Adam 1e-4 after a 1-epoch "
                "warm-up, no weight decay; fine-tuning momentum SGD 1e-3, weight "
                "decay 5e-4, no warm-up. Running the same command again resumes "
                "from the newest checkpoint.")


def add_data_flags(a):
    """What to train on and where the run lives."""
    a("--data-dir", help="folder with one subfolder of images (JPEG/PNG/BMP/GIF) per "
                         "class; without it: the built-in digits demo")
    a("--val-dir", help="separate validation folder with the same class subfolders; "
                        "default: split --data-dir with --val-fraction and --seed")
    a("--val-fraction", type=float, default=0.2,
      help="fraction of each class held out for validation (default 0.2)")
    a("--train-dir", help="checkpoints, summaries, class names and exports (default "
                          "./%s, or ./%s for the demo)" % (run_dir.DEFAULT_TRAIN_DIR,
                                                        run_dir.DEMO_TRAIN_DIR))
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


def add_recipe_flags(a):
    """The optimisation recipe (defaults that depend on the mode: training.config)."""
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


def add_output_flags(a):
    """Checkpoints, summaries and the seed."""
    a("--checkpoint-every", type=int, default=500,
      help="save a checkpoint every N steps, besides each epoch end (default 500)")
    a("--keep-checkpoints", type=int,
      help="keep the newest K checkpoints (default 3; demo 2). With Adam a "
           "checkpoint holds the weights 3 times (sizes: docs/benchmarks.md)")
    a("--summary-every", type=int, default=10,
      help="write training summaries every N steps (default 10)")
    a("--attention-images", type=int, default=4,
      help="validation images whose attention maps go to TensorBoard (default 4)")
    a("--seed", type=int, default=0, help="seed of the split, shuffling and init "
                                          "(default 0)")
    a("--peer-timeout", type=float, default=60.0,
      help="on a cluster (TF_CONFIG set): seconds a worker waits for a missing or "
           "stalled peer before every process stops with an error naming it "
           "(default 60; docs/distributed.md)")


def build_parser():
    """Returns the argparse parser of ``vgg19-cbam-train``.

    A new flag goes into the group it belongs to (the ``add_*_flags``
    functions, in --help order); a default that depends on the mode goes into
    :mod:`vgg_patch.training.config`'s ``DATA_DEFAULTS``/recipes, its range
    check into ``vgg_patch.training.config``; the code that uses it reads
    ``args.<flag>``.
    """
    p = argparse.ArgumentParser(prog=PROG, description=_DESCRIPTION)
    for add_flags in (add_data_flags, add_recipe_flags, add_output_flags):
        add_flags(p.add_argument)
    add_precision_flags(p, "training")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar or info logs")
    return p


def tensorboard_command():
    """How the user's shell starts TensorBoard: ``tensorboard`` when it is on
    PATH, else the one installed beside this Python (``run.py demo`` runs the
    trainer from the project's .venv without activating it)."""
    if shutil.which("tensorboard"):
        return "tensorboard"
    beside = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    return shlex.quote(beside) if os.path.exists(beside) else "tensorboard"


def run_training(args, prog=PROG, make_network=None):
    """Trains as ``args`` say; prints the result; returns the exit status.

    Args:
      args: the resolved configuration.
      prog: the command's name, for its messages.
      make_network: see :func:`vgg_patch.training.run.train`.
    """
    t0 = time.time()
    for line in (args.conv_path, bf16_hint(args.bf16)):
        if line:  # which convolutions run, and why; where --bf16 would pay
            _LOG.info("%s", line)
    try:
        with StopRequest() as stop:
            result = train(args, stop, make_network)
    except UsageError as err:
        report_error(prog, err)
        return EXIT_USAGE
    except PeerLost as err:  # on a cluster
        if err.rejoin:
            print("%s: %s" % (prog, err), file=sys.stderr)
            restart_process(err.starting)  # does not return
        report_error(prog, err)
        return EXIT_FAILED
    except TrainingFailed as err:
        report_error(prog, err)
        return EXIT_FAILED
    except (Interrupted, KeyboardInterrupt) as err:
        print("%s: %s" % (prog, str(err) or "interrupted before a checkpoint could be "
                          "saved; the previous checkpoint is intact"), file=sys.stderr)
        return EXIT_INTERRUPTED
    if not result.get("chief", True):
        print("best validation accuracy: %.3f (epoch %d; %d steps, %s); this worker "
              "writes nothing: the chief wrote the checkpoints and the best weights"
              % (result["best_accuracy"], result["best_epoch"] + 1, result["global_step"],
                 format_duration(time.time() - t0)))
        return EXIT_OK
    print("best validation accuracy: %.3f (epoch %d; %d steps, %s); best weights: %s; "
          "checkpoints, classes.txt and TensorBoard logs: %s; TensorBoard: "
          "%s --logdir %s"
          % (result["best_accuracy"], result["best_epoch"] + 1,
             result["global_step"], format_duration(time.time() - t0),
             result["export_path"], result["train_dir"],
             tensorboard_command(), shlex.quote(result["train_dir"])))
    return EXIT_OK


def main(argv=None):
    """Entry point of ``vgg19-cbam-train``.

    Args:
      argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
      The exit status: 0 done, 1 training failed, 2 bad input, 130 interrupted.
    """
    return train_command(argv, build_parser(), resolve_config)


def train_command(argv, parser, resolve, prog=PROG, make_network=None):
    """A training command: parse, resolve, train; returns the exit status.

    Args:
      argv: command-line arguments (None: ``sys.argv[1:]``).
      parser: the command's ``argparse`` parser.
      resolve: completes and checks the parsed arguments (raises UsageError).
      prog: the command's name, for its messages.
      make_network: see :func:`vgg_patch.training.run.train`.
    """
    args = parser.parse_args(argv)
    undo_logging = setup_logging(args.quiet)
    try:
        try:
            args = resolve(args)
        except UsageError as err:
            parser.print_usage(sys.stderr)
            report_error(prog, err)
            return EXIT_USAGE
        return run_training(args, prog, make_network)
    finally:
        undo_logging()


if __name__ == "__main__":
    sys.exit(main())
