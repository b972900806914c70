"""Case ``defaults``: what users get. The commands at their defaults against Keras.

``vgg19-cbam-train`` (224 px, batch 16, float32, every other flag at its
default: from scratch, Adam, CBAM) and ``vgg19-cbam-predict`` (batch 16) run as
users run them, in subprocesses, against a Keras ``VGG19`` training step
(SGD) and ``predict_on_batch`` in this process, interleaved round by round.

Start-up (TensorFlow's import, the graph, XLA's compiles, validation, the
final checkpoint and export) is left out: each round trains one fresh run of
``STEPS`` steps and stamps the progress bar's line after each step as it
arrives; the training rate is the images of the steps after the first over
the time between the first and the last line. Prediction takes a **marginal
rate**: two runs of ``PREDICT_IMAGES[0]`` and ``PREDICT_IMAGES[1]`` images,
the extra images over the extra wall time (a first version did training that
way too, with runs of 2 and 6 steps: on the loaded machine their start-ups,
100-150 s, varied by more than the 4 steps took). The ratio to Keras is taken within each round
(the same load), and the table gives its median and quartiles over rounds.
The convolution path each command chose (its first log line) is recorded.
"""
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import harness

_LOG = logging.getLogger("bench")

BATCH = 16
#: Steps of the training run (the first is not timed); and for --quick.
STEPS, QUICK_STEPS = 6, 3
#: (few, many) images to predict; and for --quick.
PREDICT_IMAGES, QUICK_PREDICT_IMAGES = (16, 112), (16, 32)
#: Image size of the full run and of --quick (a smoke run, not a measurement).
SIZE, QUICK_SIZE = 224, 64
#: Training images per class (2 classes); more than STEPS[1] batches.
PER_CLASS = 64


def _write_images(root, size, per_class, seed):
    """Two class folders of PNGs: noise with stripes (class 0) or blobs (1)."""
    from PIL import Image  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    for label in (0, 1):
        folder = os.path.join(root, "class%d" % label)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            base = (np.sin(xx / (3.0 + i % 5)) if label == 0
                    else np.cos(np.hypot(xx - size / 2, yy - size / 2) / (4.0 + i % 3)))
            img = 0.5 + 0.3 * base[..., None] + 0.2 * rng.random((size, size, 3))
            Image.fromarray((255 * np.clip(img, 0, 1)).astype(np.uint8)).save(
                os.path.join(folder, "%03d.png" % i))
    return root


def _command(module, argv):  # the predictor's runs
    """Runs ``python -m module argv``; returns (wall seconds, the path line)."""
    cmd = [sys.executable, "-m", module] + argv
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), proc.returncode,
                                                   proc.stderr[-2000:]))
    path = [line for line in proc.stderr.splitlines() if line.startswith("convolutions:")]
    return wall, (path[0] if path else "?")


_STEP_LINE = re.compile(r"^epoch \d+/\d+ \|[#-]*\| (\d+)/\d+")


def _train(data, val, size, steps, work):
    """One fresh training run; returns (images/s between its first and last
    step lines, the path line, the run's folder, the step stamps).

    The progress bar writes a line after every step here (8 steps per epoch,
    not a terminal); each line is stamped as it arrives, so the rate covers
    the steps after the first (XLA's compiles) and nothing of start-up,
    validation, the checkpoint or the export.
    """
    train_dir = tempfile.mkdtemp(prefix="train", dir=work)
    cmd = [sys.executable, "-m", "vgg_patch.cli.train", "--data-dir", data, "--val-dir",
           val, "--train-dir", train_dir, "--image-size", str(size), "--batch-size",
           str(BATCH), "--max-steps", str(steps), "--checkpoint-every", "100000",
           "--summary-every", "100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    stamps, path, tail = [], "?", []
    for line in proc.stderr:
        now = time.perf_counter()
        match = _STEP_LINE.match(line)
        if match:
            stamps.append((int(match.group(1)), now))
        elif line.startswith("convolutions:"):
            path = line.strip()
        tail = (tail + [line])[-20:]
    if proc.wait() != 0 or len(stamps) < 2:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), proc.returncode,
                                                   "".join(tail)))
    (first, t_first), (last, t_last) = stamps[0], stamps[-1]
    rate = BATCH * (last - first) / (t_last - t_first)
    return rate, path, train_dir, [(n, round(t - t_first, 3)) for n, t in stamps]


def _predict(train_dir, images):
    return _command("vgg_patch.cli.predict", ["--train-dir", train_dir] + images)


def _keras(size, train):
    """A step callable of Keras' VGG19 (random weights: speed only) at ``size`` px."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    model = tf.keras.applications.VGG19(weights=None, classifier_activation=None,
                                        input_shape=(size, size, 3), classes=2)
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, size, size, 3), dtype=np.float32) * 255.0
    y = rng.integers(0, 2, BATCH).astype(np.int32)
    if train:
        model.compile(optimizer=tf.keras.optimizers.SGD(1e-5),
                      loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return lambda: model.train_on_batch(x, y)
    model.compile()
    return lambda: model.predict_on_batch(x)


def _keras_rate(step, calls):
    """Images/s of ``calls`` timed calls of ``step`` (after one warm-up)."""
    step()
    times = [harness.timed(step)[0] for _ in range(calls)]
    return BATCH / statistics.median(times), times


def run(args):
    """Rounds of (train, Keras train, predict few, predict many, Keras inference);
    returns the rates and per-round ratios."""
    steps = QUICK_STEPS if args.quick else STEPS
    counts = QUICK_PREDICT_IMAGES if args.quick else PREDICT_IMAGES
    size = QUICK_SIZE if args.quick else SIZE
    rounds = harness.repeats(args, 2, 1)
    work = tempfile.mkdtemp(prefix="bench_defaults_")
    try:
        data = _write_images(os.path.join(work, "data"), size, PER_CLASS, 0)
        val = _write_images(os.path.join(work, "val"), size, 2, 1)
        files = sorted(os.path.join(data, "class0", f) for f in
                       os.listdir(os.path.join(data, "class0")))
        files = (files * (counts[1] // len(files) + 1))[:counts[1]]
        keras_train, keras_infer = _keras(size, True), _keras(size, False)
        out = {"rows": [], "size": size, "steps": steps, "predict_images": counts,
               "loadavg": []}
        for r in range(rounds):
            out["loadavg"].append(harness.machine_info().get("loadavg"))
            row = {"round": r}
            (row["train_img_s"], row["train_path"], train_dir,
             row["train_stamps"]) = _train(data, val, size, steps, work)
            row["keras_train_img_s"], row["keras_train_s"] = _keras_rate(keras_train, 2)
            (p_few, _), (p_many, path) = [_predict(train_dir, files[:n]) for n in counts]
            row["predict_path"] = path
            row["predict_img_s"] = (counts[1] - counts[0]) / (p_many - p_few)
            row["predict_walls_s"] = [p_few, p_many]
            row["keras_infer_img_s"], row["keras_infer_s"] = _keras_rate(keras_infer, 3)
            row["train_ratio"] = row["train_img_s"] / row["keras_train_img_s"]
            row["predict_ratio"] = row["predict_img_s"] / row["keras_infer_img_s"]
            _LOG.info("round %d: %s", r, row)
            out["rows"].append(row)
        out["loadavg"].append(harness.machine_info().get("loadavg"))
        out["peak_rss_mib"] = harness.mib(harness.peak_rss_bytes())
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _spread(values):
    v = sorted(values)
    if len(v) == 1:
        return "%.2f" % v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return "%.2f [%.2f, %.2f]" % (statistics.median(v), q[0], q[2])


def render(res):
    """Markdown: the commands' marginal images/s against Keras', per round and overall."""
    rows = res["rows"]
    table = []
    for what, key, keras, ratio, path in (
            ("vgg19-cbam-train (defaults)", "train_img_s", "keras_train_img_s",
             "train_ratio", "train_path"),
            ("vgg19-cbam-predict (defaults)", "predict_img_s", "keras_infer_img_s",
             "predict_ratio", "predict_path")):
        table.append({"what": what, "size": res["size"], "batch": BATCH,
                      "img_s": _spread([r[key] for r in rows]),
                      "keras": _spread([r[keras] for r in rows]),
                      "ratio": _spread([r[ratio] for r in rows]), "n": len(rows),
                      "path": rows[0][path] if rows else ""})
    cols = [("what", "command"), ("size", "px"), ("batch", "batch"),
            ("img_s", "images/s (marginal)"), ("keras", "Keras images/s"),
            ("ratio", "ratio vs Keras: median [quartiles] of rounds"), ("n", "rounds"),
            ("path", "path chosen (first log line)")]
    return "\n\n".join([
        "### What users get: the commands at their defaults vs Keras VGG19",
        harness.format_table(table, cols),
        "Training runs of %s steps (steps 2 to the last timed), predictions of %s "
        "images (marginal rate); load "
        "average per round: %s" % (res["steps"], res["predict_images"],
                                   "; ".join(res["loadavg"]))])
