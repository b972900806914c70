"""What ``vgg19-cbam-train`` and ``vgg19-cbam-predict`` share.

The errors that end a command, their exit statuses, the logging set-up of a
command-line call, the precision flags (``--bf16``, ``--winograd``) and their
check. No TensorFlow here: ``--help`` must stay fast.
"""
import argparse
import logging
import sys

EXIT_OK = 0
EXIT_FAILED = 1  # train: training failed; predict: some image was skipped
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # the reader of stdout closed it (`| head`): 128 + SIGPIPE, as a shell reports


class UsageError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


class TrainingFailed(Exception):
    """Training could not go on (NaN loss): one line on stderr, exit status 1."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: a checkpoint was saved if training began; exit status 130."""


def report_error(prog, err):
    """Prints ``PROG: error: MESSAGE`` on stderr (the commands' one-line error)."""
    print("%s: error: %s" % (prog, err), file=sys.stderr)


def setup_logging(quiet):
    """Sends this package's log records to stderr for the duration of a CLI call.

    Args:
      quiet: only warnings and errors (else info too).

    Returns:
      A callable that undoes the set-up.
    """
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


def add_precision_flags(parser, task, forced="the 3x3 convolutions of stages 3-5"):
    """Adds ``--bf16`` and ``--winograd``/``--no-winograd`` to a command's parser.

    ``args.winograd`` is True, False, or None (neither: the default path,
    :func:`vgg_patch.fastpath.choose_conv_path`).

    Args:
      parser: the ``argparse.ArgumentParser``.
      task: ``'training'`` or ``'inference'``, for the help texts.
      forced: the convolutions ``--winograd`` computes by Winograd, for its help.
    """
    parser.add_argument(
        "--bf16", action="store_true",
        help="compute in bfloat16 (oneDNN mixed precision; fast on CPUs with AVX-512 "
             "BF16/AMX, see docs/benchmarks.md); weights and checkpoints stay float32")
    parser.add_argument(
        "--winograd", action=argparse.BooleanOptionalAction, default=None,
        help="--winograd: compute %s by Winograd "
             "F(2x2, 3x3); --no-winograd: direct convolutions everywhere. Default: "
             "on CPU in float32, Winograd in the layers and at the image sizes where "
             "it measured faster for %s (docs/benchmarks.md), direct elsewhere, on "
             "GPU and with --bf16; the run's first lines say which. Same weights and "
             "checkpoints either way; --winograd does not go with --bf16" % (forced, task))


def check_precision_flags(args):
    """Refuses ``--winograd`` with ``--bf16`` (shared by the train and predict CLIs).

    bf16's speed comes from oneDNN's bfloat16 direct convolutions; the Winograd
    layers stay float32 under that rewrite and make the network slower than
    bf16 alone (measured in docs/benchmarks.md, "Winograd").

    Raises:
      UsageError: both are given.
    """
    if args.bf16 and args.winograd is True:
        raise UsageError("--winograd and --bf16 do not go together: with --bf16 the "
                         "Winograd layers stay float32 and the network is slower than "
                         "with --bf16 alone; choose one")


def short_list(names, limit=6):
    """``'[a, b, c, ...]'``: at most ``limit`` names, for one-line messages."""
    names = list(names)
    text = ", ".join(names[:limit])
    return "[%s%s]" % (text, ", ..." if len(names) > limit else "")
