"""The two commands, ``vgg19-cbam-train`` and ``vgg19-cbam-predict``.

* :mod:`vgg_patch.cli.common` -- what both share: errors and exit codes,
  logging to stderr, the precision flags, the one-line error report.
* :mod:`vgg_patch.cli.train` -- the trainer's parser and ``main``; the work
  itself is :mod:`vgg_patch.training`.
* :mod:`vgg_patch.cli.predict` -- the predictor's parser, ``predict_batches``,
  ``predict`` and ``main``.
* :mod:`vgg_patch.cli.prediction` -- what both prediction commands share: the
  batch loop, printing each batch as it comes, progress, Ctrl-C.

Importing these modules does not import TensorFlow, so ``--help`` is fast;
they import the graph code inside the functions that run it.
"""
