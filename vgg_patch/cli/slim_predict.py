"""slim-attention-predict: top-5 classes of images with a slim-attention-train export.

::

    slim-attention-predict --train-dir slim-attention-demo-resnet_v1_50-cbam \\
        digit.png --attention-map att.png

The run's ``export/slim-attention.json`` names the network (model, attention,
classes, image size; see :mod:`vgg_patch.training.slim_export`); the network
is built as in training and its model variables restored from
``export/slim-attention.ckpt``. Images are preprocessed like validation images
(shorter side resized, central crop), and each batch's predictions are printed
as soon as they are made, in the order given, with a progress line on stderr
for long lists (as ``vgg19-cbam-predict``). The convolution path is chosen as
``slim-attention-train``'s, for inference (``--winograd``/``--no-winograd``,
``--bf16``; the first log line says which). ``--attention-map OUT.png`` draws, as
``vgg19-cbam-predict`` does, the deepest spatial attention map (CBAM and SAM
have one; the other blocks do not, and the flag is refused for them).

Exit status: 0 done; 1 some image is missing or could not be read (skipped
with a warning); 2 bad input (no export, no image that can be read, ...); 130
interrupted; 141 the reader of the output closed it (``| head``), quietly.
"""
import argparse
import itertools
import logging
import sys

from vgg_patch import data as data_lib
from vgg_patch.cli.common import EXIT_FAILED as EXIT_SOME_FAILED
from vgg_patch.cli.common import (EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Interrupted,
                                  UsageError, add_precision_flags, check_precision_flags,
                                  report_error)
from vgg_patch.cli.prediction import (iterate_over_images, predict_command, print_batches,
                                      readable_images, write_attention_map)
from vgg_patch.cli.slim_train import FORCED_WINOGRAD
from vgg_patch.training import slim_export
from vgg_patch.training.slim_network import choose_conv_path

PROG = "slim-attention-predict"

logger = logging.getLogger("vgg_patch.predict")

# The blocks with a spatial map (slim_attention's ATTENTION_MAPS collection).
SPATIAL_BLOCKS = ("cbam", "sam")


def build_parser():
    """Returns the argparse parser of ``slim-attention-predict``."""
    p = argparse.ArgumentParser(
        prog=PROG, description="Print the top-5 classes of images with the network a "
                               "slim-attention-train run exported, and optionally draw "
                               "its spatial attention map (CBAM, SAM).")
    a = p.add_argument
    a("images", nargs="+", metavar="IMAGE", help="image files (JPEG/PNG/BMP/GIF)")
    a("--train-dir", required=True, help="the slim-attention-train run folder")
    a("--top-k", type=int, default=5, help="classes to print per image (default 5)")
    a("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    a("--attention-map", metavar="OUT.png",
      help="write the deepest spatial attention map over each image to this PNG "
           "(CBAM and SAM only)")
    add_precision_flags(p, "inference", FORCED_WINOGRAD)
    return p


def predict_batches(export, paths, batch_size=16, bf16=False, winograd=(), images=True):
    """Runs the exported network on image files, one batch at a time, as a generator.

    Images are preprocessed like validation images. The graph is built and the
    checkpoint restored at the first ``next()``; each batch is yielded as soon
    as it is computed, in the order of ``paths``.

    Args:
      export: the export's description (:func:`vgg_patch.training.slim_export.read`).
      paths: image files (already checked with Pillow).
      batch_size: images per forward pass.
      bf16: compute in bfloat16 (see :func:`vgg_patch.session.session_config`).
      winograd: the convolutions computed by Winograd (see
        :class:`~vgg_patch.training.slim_network.SlimNetwork`).
      images: also fetch the network's input images (False: ``None`` in their
        place).

    Yields:
      Per batch ``(kept_paths, images or None, probabilities [n, classes],
      attention_maps or None)``; a file TensorFlow cannot decode is left out
      (with a warning).

    Raises:
      ValueError: the export does not fit the network it names.
    """
    import tensorflow as tf
    from vgg_patch.session import session_config
    from vgg_patch.training.slim_network import SlimNetwork
    network = SlimNetwork(export["model"], export["num_classes"], export["attention"],
                          export.get("attention_params"), winograd=winograd)
    graph = tf.Graph()
    with graph.as_default():
        pipe = data_lib.ImagePipeline(export["image_size"], batch_size, False,
                                      name="predict_input")
        output = network.build(pipe.images, False)
        fetch = {"prob": tf.nn.softmax(output.logits)}
        if images:
            fetch["images"] = pipe.images
        if output.attention_map is not None:
            fetch["maps"] = output.attention_map
        with tf.compat.v1.Session(graph=graph, config=session_config(bf16)) as sess:
            try:
                network.restore(sess, export["checkpoint"])
            except (tf.errors.OpError, ValueError) as err:
                raise ValueError("%s does not restore into %s: %s" % (
                    export["checkpoint"], export["model"],
                    str(err).strip().splitlines()[0])) from None
            for kept, out in iterate_over_images(sess, pipe, fetch, paths):
                yield kept, out.get("images"), out["prob"], out.get("maps")


def _run(args):
    """Predicts as ``args`` say, printing each batch as it comes; returns the exit status."""
    try:
        if args.top_k < 1 or args.batch_size < 1:
            raise UsageError("--top-k and --batch-size must be >= 1, got %r and %r"
                             % (args.top_k, args.batch_size))
        check_precision_flags(args)
        try:
            export = slim_export.read(args.train_dir)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if args.attention_map and export["attention"] not in SPATIAL_BLOCKS:
            raise UsageError("--attention-map needs a block with a spatial map (%s); "
                             "this %s has %s" % (", ".join(SPATIAL_BLOCKS),
                                                 export["model"], export["attention"]))
        checked, bad = readable_images(args.images)
        path = choose_conv_path(export["model"], args.winograd, args.bf16,
                                export["image_size"], training=False,
                                batch=min(len(checked), args.batch_size))
        logger.info("%s", path.reason)
        try:
            batches = predict_batches(export, checked, args.batch_size, args.bf16,
                                      path.winograd, images=bool(args.attention_map))
            first = next(batches, None)  # builds the graph, restores the checkpoint
        except (OSError, ValueError) as err:
            raise UsageError(str(err).splitlines()[0]) from None
        paths, images, maps = print_batches(
            itertools.chain([first] if first else [], batches), export["classes"],
            args.top_k, len(checked), keep=bool(args.attention_map))
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
    """Entry point of ``slim-attention-predict``.

    Returns:
      Exit status: 0 done, 1 some image missing or unreadable, 2 bad input.
    """
    return predict_command(argv, build_parser(), _run)


if __name__ == "__main__":
    sys.exit(main())
