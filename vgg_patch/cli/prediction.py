"""What the prediction commands share: the batch loop, the output, Ctrl-C.

``vgg19-cbam-predict`` and ``slim-attention-predict`` run their network over a
:class:`vgg_patch.data.ImagePipeline` batch by batch
(:func:`iterate_over_images`), print each batch's top classes as soon as it is
computed, in the order of the images given (:func:`print_batches`), with a
progress line on stderr for work of more than two batches, and stop cleanly on
Ctrl-C: every image printed has its complete block of lines, and the command
exits with status 130.

The output, per image, is its path on one line, then one line per class,
``"  %.4f  %s" % (probability, name)``, most probable first.
"""
import contextlib
import logging
import os
import signal
import sys
import threading
import time

import numpy as np

from vgg_patch import data as data_lib
from vgg_patch import figure as figure_lib
from vgg_patch.cli.common import EXIT_BROKEN_PIPE, Interrupted, UsageError, setup_logging
from vgg_patch.progress import format_duration

logger = logging.getLogger("vgg_patch.predict")


def iterate_over_images(sess, pipe, fetch, paths):
    """Runs ``fetch`` over every batch of ``pipe`` fed with ``paths``; a generator.

    The pipeline's labels carry each image's index, so a file TensorFlow cannot
    decode, dropped by the pipeline, cannot shift the results onto the wrong
    names; it is logged when the batches pass it.

    Args:
      sess: the session.
      pipe: a :class:`vgg_patch.data.ImagePipeline` (evaluation mode).
      fetch: a dict of the tensors to fetch per batch.
      paths: the image files.

    Yields:
      Per batch ``(kept_paths, outputs)``: the paths decoded, in the order of
      ``paths``, and ``fetch``'s values for them.
    """
    import tensorflow as tf
    pipe.initialize(sess, paths, np.arange(len(paths), dtype=np.int64))
    fetch = dict(fetch, index=pipe.labels_out)
    expected = 0
    while True:
        try:
            out = sess.run(fetch)
        except tf.errors.OutOfRangeError:
            break
        kept = out.pop("index").tolist()
        for index in range(expected, kept[-1] if kept else expected):
            if index not in kept:
                logger.warning("skipping %s: TensorFlow could not decode it", paths[index])
        expected = kept[-1] + 1 if kept else expected
        yield [paths[i] for i in kept], out
    for index in range(expected, len(paths)):
        logger.warning("skipping %s: TensorFlow could not decode it", paths[index])


def readable_images(images):
    """The images Pillow can read, and how many were missing or corrupt.

    A missing image is skipped like a corrupt one: the others are still
    predicted and the exit status is 1; none left is bad input.

    Raises:
      UsageError: not one image can be read.
    """
    present = [p for p in images if os.path.isfile(p)]
    missing = [p for p in images if not os.path.isfile(p)]
    if not present:
        raise UsageError("no such image file: %s" % ", ".join(missing))
    for path in missing:
        logger.warning("skipping missing image %s (no such file)", path)
    checked, _, bad = data_lib.check_images(present, np.zeros(len(present), np.int64))
    if not checked:
        raise UsageError("none of the %d image(s) could be read (%d missing, "
                         "%d corrupt)" % (len(images), len(missing), len(present)))
    return checked, bad + len(missing)


def write_attention_map(out_png, paths, images, maps):
    """Logs each map's values and draws the figure to ``out_png``."""
    for path, amap in zip(paths, maps):
        logger.info("%s: %s", path, figure_lib.describe_map(amap).line)
    os.makedirs(os.path.dirname(os.path.abspath(out_png)), exist_ok=True)
    drawn = figure_lib.attention_figure(
        images, maps, titles=[os.path.basename(p) for p in paths])
    with open(out_png, "wb") as f:
        f.write(figure_lib.encode_png(drawn.pixels))
    logger.info("attention map written to %s", out_png)


def print_predictions(paths, probs, names, top_k):
    """Prints each path and its ``top_k`` classes with their probabilities."""
    k = min(top_k, len(names))
    for path, p in zip(paths, probs if paths else []):
        print(path)
        for index in np.argsort(-p)[:k]:
            print("  %.4f  %s" % (p[index], names[index]))


def predict_command(argv, parser, run):
    """A prediction command: parse ``argv``, log to stderr, ``run(args)``; returns
    its exit status."""
    args = parser.parse_args(argv)
    undo_logging = setup_logging(quiet=False)
    try:
        return run(args)
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as Unix tools do.
        # Python's own flush of stdout at exit would fail again: point it at
        # /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    finally:
        undo_logging()


@contextlib.contextmanager
def interrupts_deferred():
    """Holds a Ctrl-C (SIGINT) back until the block ends, then raises it.

    Around the printing of a batch, so that an interrupted run's output ends
    with whole blocks of lines. Outside the main thread (where Python cannot
    set signal handlers) the block runs as it is.

    Raises:
      KeyboardInterrupt: after the block, if Ctrl-C came during it (and SIGINT
        was Python's default handler; another handler is called instead).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and previous is signal.default_int_handler:
        raise KeyboardInterrupt
    if caught and callable(previous):
        previous(signal.SIGINT, None)


def print_batches(batches, names, top_k, total, keep=False):
    """Prints each batch's predictions as it comes, then flushes stdout.

    Args:
      batches: an iterable of ``(paths, images, probabilities, maps)`` per batch,
        such as :func:`vgg_patch.cli.predict.predict_batches`.
      names: the class names.
      top_k: classes printed per image.
      total: the number of images asked for. From the second batch on, a
        progress line goes to stderr at every tenth of them, with the rate of
        the batches after the first (whose time holds the graph's start-up)
        and the time left at that rate.
      keep: also keep every batch's images and maps (for the attention figure).

    Returns:
      ``(paths, images, maps)``: the paths printed, and if ``keep`` the images
      and maps joined (else None, None).

    Raises:
      Interrupted: on Ctrl-C, which is held back while a batch is printed:
        the output then ends with the last whole batch.
    """
    first, tenths = None, 0
    paths, images, maps = [], [], []
    try:
        for kept, batch_images, probs, batch_maps in batches:
            with interrupts_deferred():  # the output and its count stay whole
                print_predictions(kept, probs, names, top_k)
                sys.stdout.flush()
                paths.extend(kept)
            if keep:
                images.append(batch_images)
                maps.append(batch_maps)
            now = time.perf_counter()
            if first is None:
                first = (len(paths), now)
            elif 10 * len(paths) // max(total, 1) > tenths and now > first[1]:
                tenths = 10 * len(paths) // max(total, 1)
                rate = (len(paths) - first[0]) / (now - first[1])
                print("predicted %d/%d images, %.2f img/s, %s left" % (
                    len(paths), total, rate, format_duration((total - len(paths)) / rate)),
                      file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        raise Interrupted("interrupted after %d of %d images; the predictions printed "
                          "are complete" % (len(paths), total)) from None
    if not keep or not paths:
        return paths, None, None
    return paths, np.concatenate(images), (np.concatenate(maps) if maps[0] is not None
                                           else None)
