"""vgg19-cbam-predict: top-5 classes of images, and CBAM's spatial attention map.

::

    vgg19-cbam-predict cat.jpg dog.png                       # the demo's run
    vgg19-cbam-predict --train-dir runs/flowers rose.jpg --attention-map att.png
    vgg19-cbam-predict --weights vgg19.npy --synset synset.txt tiger.jpeg

Weights, class names and image size come from a training run's folder
(``--train-dir``: ``export/vgg19-cbam.npy``, ``classes.txt``, ``run.json``), or
from ``--weights`` with an ImageNet synset file (tensorflow-vgg's
``synset.txt``, one ``wnid name`` line per class) for the original weights.
Images are preprocessed exactly like validation images during training
(shorter side resized, central crop).

``--attention-map OUT.png`` writes, one row per image, the network's input, the
input with CBAM's spatial attention map (the sigmoid gate after pool5) laid
over it, the map alone with its values, and a colour bar: blue 0 - green 0.5 -
red 1 on the gate's fixed 0-1 scale, never stretched per image (see
:mod:`vgg_patch.figure`). A map whose values lie within 0.01 of each other is
labelled flat. Each map's values are logged too.

Exit status: 0 done; 1 some image is missing or could not be read (skipped
with a warning naming it; the others are still predicted); 2 bad input (no
weights, mismatched class names, no image that can be read, ...). With
weights that hold no CBAM weights (the original ``vgg19.npy``) a warning says
the attention block is untrained; ``--no-attention`` gives tensorflow-vgg's
network exactly.
"""
import argparse
import logging
import os
import sys

import numpy as np

from vgg_patch import data as data_lib
from vgg_patch import figure as figure_lib
from vgg_patch.cli.common import (EXIT_OK, EXIT_USAGE, UsageError, add_precision_flags,
                                  check_precision_flags, report_error, setup_logging)
from vgg_patch.cli.common import EXIT_FAILED as EXIT_SOME_FAILED
from vgg_patch.fastpath import choose_conv_path
from vgg_patch.session import session_config
from vgg_patch.training import slim_export
from vgg_patch.training.run_dir import (CLASSES_FILE, DEFAULT_TRAIN_DIR, DEMO_TRAIN_DIR,
                                        EXPORT_NAME, read_run_settings)

logger = logging.getLogger("vgg_patch.predict")  # also under python -m

PROG = "vgg19-cbam-predict"
PREDICT_BATCH = 16  # images per forward pass


def build_parser():
    """Returns the argparse parser of ``vgg19-cbam-predict``."""
    p = argparse.ArgumentParser(
        prog=PROG, description="Print the top-5 classes of images with the CBAM-patched "
                               "VGG19 and optionally draw its spatial attention map.")
    a = p.add_argument
    a("images", nargs="+", metavar="IMAGE", help="image files (JPEG/PNG/BMP/GIF)")
    a("--train-dir", help="a vgg19-cbam-train run folder (default: ./%s if it holds a "
                          "run, else ./%s)" % (DEFAULT_TRAIN_DIR,
                                               DEMO_TRAIN_DIR))
    a("--weights", help="a weights .npy (default: the run's export/vgg19-cbam.npy)")
    a("--synset", help="ImageNet synset file, one 'wnid name' line per class "
                       "(tensorflow-vgg's synset.txt), for the original weights")
    a("--image-size", type=int, help="model input size (default: the run's, else 224)")
    a("--top-k", type=int, default=5, help="classes to print per image (default 5)")
    add_precision_flags(p, "inference")
    a("--no-attention", action="store_true",
      help="build the unpatched VGG19 (exactly tensorflow-vgg's), e.g. for the "
           "original ImageNet weights, which have no CBAM weights")
    a("--attention-map", metavar="OUT.png",
      help="write the spatial attention map over each image to this PNG")
    return p


def read_class_names(path, synset=False):
    """Reads class names, one per line (synset lines: ``wnid name, alias``).

    Args:
      path: the text file.
      synset: drop the leading WordNet id of each line.

    Returns:
      The list of names.

    Raises:
      UsageError: if the file is missing or empty.
    """
    if not os.path.isfile(path):
        raise UsageError("class-name file %r does not exist" % path)
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    if not lines:
        raise UsageError("class-name file %r is empty" % path)
    if synset:
        lines = [line.split(" ", 1)[1] if " " in line else line for line in lines]
    return lines


def resolve(args):
    """Works out weights, class names and image size from the arguments.

    Returns:
      ``(weights_path, class_names, image_size)``.

    Raises:
      UsageError: if something needed is missing.
    """
    train_dir = args.train_dir
    if train_dir is None:
        for candidate in (DEFAULT_TRAIN_DIR, DEMO_TRAIN_DIR):
            if os.path.isfile(os.path.join(candidate, CLASSES_FILE)):
                train_dir = candidate
                break
    elif not os.path.isdir(train_dir):
        raise UsageError("--train-dir %r does not exist" % train_dir)
    run = read_run_settings(train_dir) if train_dir is not None else {}
    weights = args.weights
    if weights is None:
        if train_dir is None:
            raise UsageError("no weights: give --weights FILE.npy or --train-dir of a "
                             "vgg19-cbam-train run")
        weights = os.path.join(train_dir, EXPORT_NAME)
        if os.path.isfile(os.path.join(train_dir, slim_export.EXPORT_JSON)):
            raise UsageError("%r is a slim-attention-train run: predict with "
                             "slim-attention-predict --train-dir %s" % (train_dir,
                                                                        train_dir))
        if not os.path.isfile(weights):
            raise UsageError("%r has no exported weights (%s); finish a training run "
                             "there first or give --weights" % (train_dir,
                                                                EXPORT_NAME))
    elif not os.path.isfile(weights):
        raise UsageError("--weights %r: no such file" % weights)
    if args.synset:
        names = read_class_names(args.synset, synset=True)
    elif train_dir is not None and os.path.isfile(os.path.join(train_dir,
                                                              CLASSES_FILE)):
        names = read_class_names(os.path.join(train_dir, CLASSES_FILE))
    else:
        raise UsageError("no class names: give --synset synset.txt (ImageNet weights) "
                         "or --train-dir of the run that wrote %r" % weights)
    image_size = args.image_size or run.get("image_size") or 224
    if image_size < 1:
        raise UsageError("--image-size must be >= 1, got %r" % image_size)
    if args.top_k < 1:
        raise UsageError("--top-k must be >= 1, got %r" % args.top_k)
    if args.no_attention and args.attention_map:
        raise UsageError("--attention-map needs the attention block; drop --no-attention")
    return weights, names, int(image_size)


def predict(weights, class_names, image_size, paths, attention=True,
            batch_size=PREDICT_BATCH,
            bf16=False, winograd=False):
    """Runs the network on image files, preprocessed like validation images.

    One graph: the tf.data pipeline of :mod:`vgg_patch.data` (shorter side
    resized, central crop) feeds the network, ``batch_size`` images at a time.

    Args:
      weights: path of the weights ``.npy``.
      class_names: list of class names (its length is the number of classes).
      image_size: model input size.
      paths: image files (already checked with Pillow).
      attention: build CBAM after pool5 (False: the unpatched network).
      batch_size: images per forward pass.
      bf16: compute in bfloat16 (see :func:`vgg_patch.session.session_config`).
      winograd: ``Vgg19``'s ``winograd``: a bool or the layers computed by Winograd
        (the command passes :func:`vgg_patch.fastpath.choose_conv_path`'s).

    Returns:
      ``(kept_paths, images [N, size, size, 3], probabilities [N, classes],
      attention_maps [N, h, w, 1] or None)``; a file TensorFlow cannot decode
      is left out (with a warning).

    Raises:
      ValueError, OSError: the weights file does not fit or cannot be read.
    """
    import tensorflow as tf
    from vgg_patch.vgg19 import Vgg19
    graph = tf.Graph()
    with graph.as_default():
        pipe = data_lib.ImagePipeline(image_size, batch_size, False, name="predict_input")
        vgg = Vgg19(weights, trainable=False, attention="cbam" if attention else None,
                    num_classes=len(class_names), winograd=winograd)
        vgg.build(pipe.images, train_mode=False)
        fetch = [pipe.labels_out, pipe.images, vgg.prob]
        if attention:
            fetch.append(vgg.attention_map)
        with tf.compat.v1.Session(graph=graph, config=session_config(bf16)) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            kept, merged = run_over_images(sess, pipe, fetch, paths)
    if not kept:
        return [], None, None, None
    return kept, merged[1], merged[2], merged[3] if attention else None


def run_over_images(sess, pipe, fetch, paths):
    """Runs ``fetch`` over every batch of ``pipe`` fed with ``paths``.

    The pipeline's labels carry each image's index (``fetch[0]`` must be
    ``pipe.labels_out``), so a file TensorFlow cannot decode, dropped by the
    pipeline, cannot shift the results onto the wrong names; it is logged.

    Args:
      sess: the session.
      pipe: a :class:`vgg_patch.data.ImagePipeline` (evaluation mode).
      fetch: the tensors to fetch per batch, ``pipe.labels_out`` first.
      paths: the image files.

    Returns:
      ``(kept_paths, merged)``: the paths that were decoded, and per fetched
      tensor its batches concatenated (None if nothing was decoded).
    """
    import tensorflow as tf
    pipe.initialize(sess, paths, np.arange(len(paths), dtype=np.int64))
    outputs = []
    while True:
        try:
            outputs.append(sess.run(fetch))
        except tf.errors.OutOfRangeError:
            break
    if not outputs:
        return [], None
    merged = [np.concatenate(parts) for parts in zip(*outputs)]
    kept = merged[0].tolist()
    for index in sorted(set(range(len(paths))) - set(kept)):
        logger.warning("skipping %s: TensorFlow could not decode it", paths[index])
    return [paths[i] for i in kept], merged


def _has_attention_weights(weights):
    """True if the weights file holds a CBAM block (reads only its index)."""
    from vgg_patch.layout import ATTENTION_BLOCK_KEY
    from vgg_patch.weights import WeightsFile
    return ATTENTION_BLOCK_KEY in WeightsFile(weights).blocks


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


def _run(args):
    """Predicts as ``args`` say; returns the exit status."""
    try:
        check_precision_flags(args)
        weights, names, image_size = resolve(args)
        checked, bad = readable_images(args.images)
        path = choose_conv_path(args.winograd, args.bf16, image_size, training=False,
                                batch=min(len(checked), PREDICT_BATCH))
        logger.info("%s", path.reason)
        try:
            if not args.no_attention and not _has_attention_weights(weights):
                logger.warning("%s has no CBAM weights, so the attention block is "
                               "untrained and changes the predictions; add "
                               "--no-attention for tensorflow-vgg's network", weights)
            paths, images, probs, maps = predict(weights, names, image_size, checked,
                                                 attention=not args.no_attention,
                                                 bf16=args.bf16, winograd=path.winograd)
        except (OSError, ValueError) as err:  # WeightsFileError is a ValueError
            raise UsageError(str(err).splitlines()[0]) from None
    except UsageError as err:
        report_error(PROG, err)
        return EXIT_USAGE
    bad += len(checked) - len(paths)
    print_predictions(paths, probs, names, args.top_k)
    if args.attention_map and paths:
        write_attention_map(args.attention_map, paths, images, maps)
    return EXIT_SOME_FAILED if bad else EXIT_OK


def print_predictions(paths, probs, names, top_k):
    """Prints each path and its ``top_k`` classes with their probabilities."""
    k = min(top_k, len(names))
    for path, p in zip(paths, probs if paths else []):
        print(path)
        for index in np.argsort(-p)[:k]:
            print("  %.4f  %s" % (p[index], names[index]))


def main(argv=None):
    """Entry point of ``vgg19-cbam-predict``.

    Args:
      argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
      Exit status: 0 done, 1 some image missing or unreadable, 2 bad input
      (including: not one image could be read).
    """
    return predict_command(argv, build_parser(), _run)


def predict_command(argv, parser, run):
    """A prediction command: parse ``argv``, log to stderr, ``run(args)``; returns
    its exit status."""
    args = parser.parse_args(argv)
    undo_logging = setup_logging(quiet=False)
    try:
        return run(args)
    finally:
        undo_logging()


if __name__ == "__main__":
    sys.exit(main())
