"""vgg19-cbam-train from scratch: first-step loss, loss after N steps, accuracy.

Measures the trainer's own default recipe (``vgg_patch.train.build_graph`` with
the options ``vgg19-cbam-train --data-dir ...`` resolves to, no ``--weights``)
on an easy generated task, for several image sizes, class counts and seeds::

    python bench/from_scratch.py                         # the README's table
    python bench/from_scratch.py --sizes 32 --classes 2 --seeds 0
    python bench/from_scratch.py -- --optimizer adam --learning-rate 1e-4

Everything after ``--`` is passed to the trainer's option parser, so another
recipe can be measured against the defaults.

The task: class ``c`` of ``C`` is a solid colour (hue ``c / C`` around the
colour wheel; brightness alternating for neighbouring classes) with a
per-image random brightness jitter and pixel noise. Images are generated in
NumPy and fed in place of the input pipeline's output, so no files are
written. The N steps are the first epoch of a ``--epochs``-long run (the
learning-rate schedule sees ``total_steps = N * epochs``), as in a real run on
a data set of N batches.

Columns: ``first loss`` is the cross-entropy of step 1 (before any update;
``ln C`` is what a classifier that knows nothing gives; the trainer's ``loss``
adds the weight decay's L2 term), ``loss @N`` the mean cross-entropy of the
last 5 steps, ``acc`` the accuracy on 64 fresh images (16 above 64 px) in inference mode
(``train_mode`` False; chance is ``1 / C``), ``max loss`` the largest cross-entropy
of the run (a diverging run shows here or as ``NaN at k``).
"""
import argparse
import colorsys
import math
import os
import sys
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULT_STEPS = {32: 30, 64: 15, 112: 8, 224: 4}
DEFAULT_BATCH = {32: 8, 64: 8, 112: 4, 224: 2}


def make_batch(rng, num_classes, size, batch):
    """``batch`` images [batch, size, size, 3] in [0, 1] and their int64 labels."""
    labels = rng.randint(0, num_classes, batch).astype(np.int64)
    images = np.empty((batch, size, size, 3), np.float32)
    for i, c in enumerate(labels):
        value = 0.9 if c % 2 == 0 else 0.6
        colour = np.array(colorsys.hsv_to_rgb(c / float(num_classes), 0.9, value),
                          np.float32)
        colour *= rng.uniform(0.85, 1.0)
        images[i] = colour + rng.normal(0.0, 0.05, (size, size, 3))
    return np.clip(images, 0.0, 1.0), labels


def measure(size, num_classes, seed, steps, batch, epochs=10, extra=(),
            repeat_batch=False, eval_images=64):
    """Trains ``steps`` steps from scratch with the trainer's defaults.

    Args:
      size: image size.
      num_classes: number of classes of the generated task.
      seed: the trainer's ``--seed`` (initialisation) and the data's.
      steps: training steps (the first epoch of an ``epochs``-long run).
      batch: images per step.
      epochs: run length the schedule sees, in epochs of ``steps`` steps.
      extra: more trainer options (e.g. ``['--optimizer', 'adam']``).
      repeat_batch: train on one batch over and over (can it fit it?).
      eval_images: fresh images the accuracy is measured on.

    Returns:
      A dict of the table's columns, plus ``losses`` (the cross-entropy of
      every step) and ``nan_at`` (the step the NaN guard stopped, or None).
    """
    import tensorflow as tf
    from vgg_patch.cli.train import build_parser
    from vgg_patch.training.config import resolve_config
    from vgg_patch.training.graph import build_graph
    from vgg_patch.training.optimization import run_step

    argv = ["--data-dir", "generated", "--image-size", str(size), "--batch-size",
            str(batch), "--seed", str(seed), "--epochs", str(epochs)] + list(extra)
    args = resolve_config(build_parser().parse_args(argv))
    rng = np.random.RandomState(1000 + seed)
    row = {"size": size, "classes": num_classes, "seed": seed, "batch": batch,
           "steps": steps, "nan_at": None}
    graph = tf.Graph()
    with graph.as_default():
        g = build_graph(args, num_classes, steps, steps * epochs)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(g.init)
            sess.run(g.copy_statistics)
            losses = []
            t0 = time.time()
            x, y = make_batch(rng, num_classes, size, batch)
            for step in range(1, steps + 1):
                if step > 1 and not repeat_batch:
                    x, y = make_batch(rng, num_classes, size, batch)
                out = run_step(sess, g, [g.train_op, g.xent],
                               {g.images: x, g.labels: y, g.train_mode: True})
                if out is None:
                    row["nan_at"] = step
                    break
                losses.append(float(out[1]))
            row["seconds_per_step"] = (time.time() - t0) / max(1, len(losses))
            correct = count = 0
            if row["nan_at"] is None:
                for _ in range(max(1, eval_images // batch)):
                    x, y = make_batch(rng, num_classes, size, batch)
                    correct += int(sess.run(g.correct, {g.images: x, g.labels: y}))
                    count += batch
    row["first_loss"] = losses[0] if losses else float("nan")
    row["last_loss"] = float(np.mean(losses[-5:])) if losses else float("nan")
    row["max_loss"] = max(losses) if losses else float("nan")
    row["accuracy"] = correct / float(count) if count else float("nan")
    row["losses"] = losses
    return row


def format_row(row):
    status = ("NaN at %d" % row["nan_at"]) if row["nan_at"] else "%.3g" % row["max_loss"]
    return ("| %d | %d | %d | %d x %d | %.3f | %.3f | %.3f | %.3f | %s | %.2f |"
            % (row["size"], row["classes"], row["seed"], row["steps"], row["batch"],
               math.log(row["classes"]), row["first_loss"], row["last_loss"],
               row["accuracy"], status, row["seconds_per_step"]))


HEADER = ("| size | classes | seed | steps x batch | ln C | first loss | loss @N | acc | "
          "max loss | s/step |\n|---|---|---|---|---|---|---|---|---|---|")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(prog="python bench/from_scratch.py",
                                description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="32,64,112,224")
    p.add_argument("--classes", default="2,10,1000")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, help="steps per run (default: 30 at 32 px, "
                                             "15 at 64, 8 at 112, 4 at 224)")
    p.add_argument("--batch-size", type=int, help="default: 8 at 32-64 px, 4 at 112, "
                                                  "2 at 224")
    p.add_argument("--epochs", type=int, default=10,
                   help="length of the run the N steps begin, in epochs of N steps "
                        "(default 10, the trainer's default)")
    p.add_argument("--losses", action="store_true",
                   help="also print every step's cross-entropy under each row")
    a = p.parse_args(argv)
    print("trainer options: --data-dir ... %s" % " ".join(extra) if extra
          else "trainer options: the defaults (--data-dir ..., no --weights)")
    print(HEADER)
    sys.stdout.flush()
    for size in [int(s) for s in a.sizes.split(",")]:
        for num_classes in [int(c) for c in a.classes.split(",")]:
            for seed in [int(s) for s in a.seeds.split(",")]:
                row = measure(size, num_classes, seed,
                              a.steps or DEFAULT_STEPS.get(size, 20),
                              a.batch_size or DEFAULT_BATCH.get(size, 4), a.epochs,
                              extra, eval_images=64 if size <= 64 else 16)
                print(format_row(row))
                if a.losses:
                    print("  losses: " + " ".join("%.3g" % x for x in row["losses"]))
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
