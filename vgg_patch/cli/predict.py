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

Each image's top classes are printed as soon as its batch of 16 is computed,
in the order given: the path, then ``  0.8123  name`` lines, most probable
first. From the second batch on, a progress line goes to stderr at every
tenth of the images (images done, rate, time left). Ctrl-C stops after the batch being computed; what was printed is whole.

Exit status: 0 done; 1 some image is missing or could not be read (skipped
with a warning naming it; the others are still predicted); 2 bad input (no
weights, mismatched class names, no image that can be read, ...); 130
interrupted (Ctrl-C); 141 the reader of the output closed it (``| head``),
quietly. With
weights that hold no CBAM weights (the original ``vgg19.npy``) a warning says
the attention block is untrained; ``--no-attention`` gives tensorflow-vgg's
network exactly.
"""
import argparse
import itertools
import logging
import os
import sys

import numpy as np

from vgg_patch import data as data_lib
from vgg_patch.cli.common import (EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Interrupted,
                                  UsageError, add_precision_flags, check_precision_flags,
                                  report_error)
from vgg_patch.cli.common import EXIT_FAILED as EXIT_SOME_FAILED
from vgg_patch.cli.prediction import (iterate_over_images, predict_command, print_batches,
                                      readable_images, write_attention_map)
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


def predict_batches(weights, class_names, image_size, paths, attention=True,
                    batch_size=PREDICT_BATCH, bf16=False, winograd=False, images=True):
    """Runs the network on image files, one batch at a time, as a generator.

    One graph: the tf.data pipeline of :mod:`vgg_patch.data` (shorter side
    resized, central crop) feeds the network, ``batch_size`` images at a time.
    The graph is built and the weights loaded at the first ``next()``; each
    batch is yielded as soon as it is computed, in the order of ``paths``.

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
      images: also fetch the network's input images (False: ``None`` in their
        place, which saves copying them out of the graph).

    Yields:
      Per batch ``(kept_paths, images [n, size, size, 3] or None, probabilities
      [n, classes], attention_maps [n, h, w, 1] or None)``; a file TensorFlow
      cannot decode is left out (with a warning).

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
        fetch = {"prob": vgg.prob}
        if images:
            fetch["images"] = pipe.images
        if attention:
            fetch["maps"] = vgg.attention_map
        with tf.compat.v1.Session(graph=graph, config=session_config(bf16)) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            for kept, out in iterate_over_images(sess, pipe, fetch, paths):
                yield kept, out.get("images"), out["prob"], out.get("maps")


def predict(weights, class_names, image_size, paths, attention=True,
            batch_size=PREDICT_BATCH, bf16=False, winograd=False):
    """Runs the network on image files, preprocessed like validation images.

    :func:`predict_batches` (same arguments), its batches joined.

    Returns:
      ``(kept_paths, images [N, size, size, 3], probabilities [N, classes],
      attention_maps [N, h, w, 1] or None)``; a file TensorFlow cannot decode
      is left out (with a warning).

    Raises:
      ValueError, OSError: the weights file does not fit or cannot be read.
    """
    batches = list(predict_batches(weights, class_names, image_size, paths, attention,
                                   batch_size, bf16, winograd))
    if not batches:
        return [], None, None, None
    kept, images, probs, maps = zip(*batches)
    return ([p for part in kept for p in part], np.concatenate(images),
            np.concatenate(probs), np.concatenate(maps) if attention else None)


def _has_attention_weights(weights):
    """True if the weights file holds a CBAM block (reads only its index)."""
    from vgg_patch.layout import ATTENTION_BLOCK_KEY
    from vgg_patch.weights import WeightsFile
    return ATTENTION_BLOCK_KEY in WeightsFile(weights).blocks


def _run(args):
    """Predicts as ``args`` say, printing each batch as it comes; returns the exit status."""
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
            batches = predict_batches(weights, names, image_size, checked,
                                      attention=not args.no_attention, bf16=args.bf16,
                                      winograd=path.winograd,
                                      images=bool(args.attention_map))
            first = next(batches, None)  # builds the graph, loads the weights
        except (OSError, ValueError) as err:  # WeightsFileError is a ValueError
            raise UsageError(str(err).splitlines()[0]) from None
        paths, images, maps = print_batches(
            itertools.chain([first] if first else [], batches), names, args.top_k,
            len(checked), keep=bool(args.attention_map))
    except UsageError as err:
        report_error(PROG, err)
        return EXIT_USAGE
    except (KeyboardInterrupt, Interrupted) as err:
        print("%s: %s" % (PROG, str(err) or "interrupted before any prediction"),
              file=sys.stderr)
        return EXIT_INTERRUPTED
    bad += len(checked) - len(paths)
    if args.attention_map and paths:
        write_attention_map(args.attention_map, paths, images, maps)
    return EXIT_SOME_FAILED if bad else EXIT_OK


def main(argv=None):
    """Entry point of ``vgg19-cbam-predict``.

    Args:
      argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
      Exit status: 0 done, 1 some image missing or unreadable, 2 bad input
      (including: not one image could be read).
    """
    return predict_command(argv, build_parser(), _run)


if __name__ == "__main__":
    sys.exit(main())
