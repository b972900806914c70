"""``python -m vgg_patch.predict``: the ``vgg19-cbam-predict`` command.

The command lives in :mod:`vgg_patch.cli.predict`; this module keeps
``python -m vgg_patch.predict`` and the names code imported from
``vgg_patch.predict`` before the split (and ``predict_batches``, the
batch-by-batch form of ``predict``).
"""
import sys

from vgg_patch.cli.predict import (EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, PROG, UsageError,
                                   build_parser, main, predict, predict_batches,
                                   read_class_names, resolve)

__all__ = ["EXIT_OK", "EXIT_SOME_FAILED", "EXIT_USAGE", "PROG", "UsageError",
           "build_parser", "main", "predict", "predict_batches", "read_class_names",
           "resolve"]

if __name__ == "__main__":
    sys.exit(main())
