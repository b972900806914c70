"""Case ``defaults``: what users get. The commands at their defaults against Keras.

``vgg19-cbam-train`` (224 px, batch 16, float32, every other flag at its
default: from scratch, Adam, CBAM) and ``vgg19-cbam-predict`` (batch 16) run as
users run them, in subprocesses, against a Keras ``VGG19`` training step
(SGD) and ``predict_on_batch`` in this process, interleaved round by round.

Both sides are timed in steady state, inside one run, warm-up left out:

- **Training**: each round trains one fresh run of ``STEPS`` steps and stamps
  the progress bar's line after each step as it arrives; the rate is the
  images of the steps after the first over the time between the first and the
  last line (start-up -- TensorFlow's import, the graph, XLA's compiles -- and
  validation, the final checkpoint and the export are outside it). Keras: one
  warm-up ``train_on_batch``, then the median of timed calls.
- **Prediction**: one run of ``PREDICT_IMAGES`` images per round; the command
  prints each batch's predictions as soon as they are made (stdout flushed),
  so each image's path line is stamped as it arrives, and the rate is the
  images of batches 2 to the last over the time between the end of batch 1
  and the end of the last (start-up, the graph, the weights, XLA's compiles
  and the first batch are outside it; each timed batch includes decoding its
  images in tf.data, overlapped by prefetch, the forward pass, the softmax and
  printing). Keras: the same image files, decoded and preprocessed once
  beforehand by the same function (``vgg_patch.data.decode_and_resize``), in
  the same batches of 16; batch 1 is its warm-up and batches 2 to the last are
  timed, ``predict_on_batch`` on the decoded arrays (no decoding inside its
  time). Same threads: both use TensorFlow's default thread pools, one process
  each, never at the same time.

The ratio to Keras is taken within each round (the same load), and the table
gives its median and quartiles over rounds. The convolution path each command
chose (its first log line) is recorded. (A first version took both commands'
rates as marginal rates of two runs, the extra images over the extra wall
time; their start-ups varied by more than the extra work took.)
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
#: Images to predict per round (7 batches: the first is not timed); and for --quick.
PREDICT_IMAGES, QUICK_PREDICT_IMAGES = 112, 48
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


def _cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` so far (all its threads), from
    /proc; None where there is no /proc."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _predict(train_dir, images):
    """One ``vgg19-cbam-predict`` run over ``images``; returns (images/s of
    batches 2 to the last, its CPU seconds per image or None, the path line,
    [(images printed, seconds after batch 1)] per batch).

    Each image's path line (stdout, flushed per batch) is stamped as it
    arrives, with the process's CPU time; a batch ends with its last image's line.
    """
    cmd = [sys.executable, "-m", "vgg_patch.cli.predict", "--train-dir", train_dir] + images
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        stamps = []
        for line in proc.stdout:
            if not line.startswith(" "):
                stamps.append((time.perf_counter(), _cpu_seconds(proc.pid)))
        rc = proc.wait()
        err.seek(0)
        log = err.read()
    if rc != 0 or len(stamps) != len(images) or len(images) <= BATCH:
        raise RuntimeError("%s failed (%d, %d lines): %s" % (" ".join(cmd[:6]), rc,
                                                            len(stamps), log[-2000:]))
    path = [line for line in log.splitlines() if line.startswith("convolutions:")]
    rate, cpu, ends = steady_rate(stamps)
    return rate, cpu, path[0] if path else "?", ends


def steady_rate(stamps, batch=BATCH):
    """Images/s and CPU seconds per image of batches 2 to the last.

    Args:
      stamps: per image printed, in order, ``(wall seconds, CPU seconds or None)``
        when its line arrived; a batch ends with its last image's.
      batch: images per batch.

    Returns:
      ``(images/s, CPU s per image or None, [(images printed, wall seconds
      after batch 1)] per batch)``.
    """
    ends = [(n,) + tuple(stamps[n - 1]) for n in range(batch, len(stamps) + 1, batch)]
    ends += [] if len(stamps) % batch == 0 else [(len(stamps),) + tuple(stamps[-1])]
    if len(ends) < 2:
        raise ValueError("stamps: need more than one batch (%d) of images, got %d"
                         % (batch, len(stamps)))
    (first, t_first, c_first), (last, t_last, c_last) = ends[0], ends[-1]
    cpu = None if c_first is None else (c_last - c_first) / (last - first)
    return ((last - first) / (t_last - t_first), cpu,
            [(n, round(t - t_first, 3)) for n, t, _ in ends])


def _decoded(files, size):
    """The files as the predictor's pipeline gives them to the network
    (:func:`vgg_patch.data.decode_and_resize`, central crop), in batches of
    ``BATCH``, scaled to Keras VGG19's 0-255 (the values do not change its speed)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from vgg_patch.data import decode_and_resize  # pylint: disable=import-outside-toplevel
    images = np.stack([np.asarray(decode_and_resize(tf.constant(f), size, False))
                       for f in files]) * 255.0
    return [images[i:i + BATCH] for i in range(0, len(files), BATCH)]


def _keras_predict_rate(predict_on_batch, batches):
    """Images/s and CPU seconds per image (this process, all threads) of Keras
    inference over ``batches`` as the predictor's are timed: the first is the
    warm-up, the others are timed one by one."""
    predict_on_batch(batches[0])
    cpu = {}
    times = [harness.interleaved({"keras": lambda b=b: predict_on_batch(b)}, 0, 1,
                                 cpu)["keras"][0] for b in batches[1:]]
    images = sum(len(b) for b in batches[1:])
    return images / sum(times), sum(cpu["keras"]) / images, times


def _keras(size, train):
    """A training step callable of Keras' VGG19 (random weights: speed only) at
    ``size`` px, or (``train`` False) its ``predict_on_batch``."""
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
    return model.predict_on_batch


def _keras_rate(step, calls):
    """Images/s of ``calls`` timed calls of ``step`` (after one warm-up)."""
    step()
    times = [harness.timed(step)[0] for _ in range(calls)]
    return BATCH / statistics.median(times), times


def run(args):
    """Rounds of (train, Keras train, predict, Keras inference), the inference
    pair in alternating order; returns the rates and per-round ratios."""
    steps = QUICK_STEPS if args.quick else STEPS
    count = QUICK_PREDICT_IMAGES if args.quick else PREDICT_IMAGES
    size = QUICK_SIZE if args.quick else SIZE
    rounds = harness.repeats(args, 2, 1)
    work = tempfile.mkdtemp(prefix="bench_defaults_")
    try:
        data = _write_images(os.path.join(work, "data"), size, PER_CLASS, 0)
        val = _write_images(os.path.join(work, "val"), size, 2, 1)
        files = sorted(os.path.join(data, "class%d" % (i % 2), "%03d.png" % (i // 2))
                       for i in range(count))
        keras_train, keras_infer = _keras(size, True), _keras(size, False)
        batches = _decoded(files, size)
        out = {"rows": [], "size": size, "steps": steps, "predict_images": count,
               "loadavg": []}
        for r in range(rounds):
            out["loadavg"].append(harness.machine_info().get("loadavg"))
            row = {"round": r}
            (row["train_img_s"], row["train_path"], train_dir,
             row["train_stamps"]) = _train(data, val, size, steps, work)
            row["keras_train_img_s"], row["keras_train_s"] = _keras_rate(keras_train, 2)
            row.update(predict_round(train_dir, files, keras_infer, batches, r % 2 == 1))
            row["train_ratio"] = row["train_img_s"] / row["keras_train_img_s"]
            _LOG.info("round %d: %s", r, row)
            out["rows"].append(row)
            harness.emit_row(row)
        out["loadavg"].append(harness.machine_info().get("loadavg"))
        out["peak_rss_mib"] = harness.mib(harness.peak_rss_bytes())
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def predict_round(train_dir, files, keras_predict, batches, keras_first=False):
    """One round of the predictor against Keras inference on the same images
    (``batches``: :func:`_decoded`'s); returns the row's predict fields."""
    row = {}
    for side in (("keras", "ours") if keras_first else ("ours", "keras")):
        if side == "ours":
            (row["predict_img_s"], row["predict_cpu_s"], row["predict_path"],
             row["predict_stamps"]) = _predict(train_dir, files)
        else:
            (row["keras_infer_img_s"], row["keras_infer_cpu_s"],
             row["keras_infer_s"]) = _keras_predict_rate(keras_predict, batches)
    row["predict_ratio"] = row["predict_img_s"] / row["keras_infer_img_s"]
    if row["predict_cpu_s"]:  # CPU time per image: Keras' over ours
        row["predict_cpu_ratio"] = row["keras_infer_cpu_s"] / row["predict_cpu_s"]
    return row


def _spread(values):
    v = sorted(values)
    if len(v) == 1:
        return "%.2f" % v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return "%.2f [%.2f, %.2f]" % (statistics.median(v), q[0], q[2])


def render(res):
    """Markdown: the commands' steady images/s against Keras', per round and overall."""
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
            ("img_s", "images/s (steady, in the run)"), ("keras", "Keras images/s"),
            ("ratio", "ratio vs Keras: median [quartiles] of rounds"), ("n", "rounds"),
            ("path", "path chosen (first log line)")]
    cpu = [r["predict_cpu_ratio"] for r in rows if r.get("predict_cpu_ratio")]
    return "\n\n".join([
        "### What users get: the commands at their defaults vs Keras VGG19",
        harness.format_table(table, cols),
        "Prediction's CPU-time ratio (Keras' CPU seconds per image over the "
        "predictor's, each process's threads together): %s" % (
            _spread(cpu) if cpu else "not measured (no /proc)"),
        "Training runs of %s steps (steps 2 to the last timed), predictions of %s "
        "images (batches 2 to the last timed; Keras on the same images, batches 2 "
        "to the last); load "
        "average per round: %s" % (res["steps"], res["predict_images"],
                                   "; ".join(res["loadavg"]))])
