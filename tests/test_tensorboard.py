"""TensorBoard reads what vgg19-cbam-train writes.

A short training run (2 epochs of 3 steps at 32x32, the generated images of
train_helpers.py), then the real ``tensorboard`` command, as the README gives
it, on 127.0.0.1 at a free port, read back through its HTTP data API: the
training and validation scalars at the steps they belong to, and the attention
images. The server is stopped by its process id (its process group: the data
server it starts goes with it), also when the test fails.
"""
import io
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from train_helpers import base_args, make_image_folder
from vgg_patch.cli import train as train_cli

SERVER_TIMEOUT = 90  # seconds for the server to start and show every event


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port, path, **query):
    url = "http://127.0.0.1:%d%s" % (port, path)
    if query:
        url += "?" + urllib.parse.urlencode(query)
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _get_json(port, path, **query):
    return json.loads(_get(port, path, **query).decode("utf-8"))


def _stop(proc):
    """Stops the server's process group by its pid; returns once it is gone."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    deadline = time.time() + 10
    while time.time() < deadline:  # anything left in its group (the data server)?
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.1)  # killed; gone once its parent (or init) reaps it


def _event_images(train_dir):
    """{step: PNG bytes} of the attention images in the run's event files."""
    found = {}
    for name in os.listdir(train_dir):
        if name.startswith("events.out.tfevents"):
            # Plain Python reading: works with and without v2 behaviour.
            for event in tf.compat.v1.train.summary_iterator(os.path.join(train_dir,
                                                                          name)):
                for value in event.summary.value:
                    if value.tag == "validation/attention_map":
                        found[event.step] = value.image.encoded_image_string
    return found


# Long: one server's start, reads and stop, which must stay in one try/finally.
def test_tensorboard_serves_the_runs_scalars_and_attention_images(tmp_path, capsys):
    data = make_image_folder(str(tmp_path / "data"), per_class=4, corrupt=False)
    train_dir = str(tmp_path / "train")
    os.makedirs(train_dir)
    port = _free_port()
    log_path = str(tmp_path / "tensorboard.log")
    with open(log_path, "wb") as log:
        # The command the trainer's last line gives (a dependency of the
        # project), started first so that its start-up overlaps the training.
        tensorboard = train_cli.tensorboard_command()
        proc = subprocess.Popen(
            shlex.split(tensorboard) + ["--logdir", train_dir, "--host", "127.0.0.1",
             "--port", str(port), "--reload_interval", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # 12 images: 9 train (3 steps of 4, 4, 1) and 3 validation, 2 epochs.
        # CBAM and fc8 train, the rest is frozen: the same summaries, and
        # checkpoints without momentum for the frozen layers (half the bytes).
        rc = train_cli.main(base_args(data, train_dir, "--epochs", "2",
                                      "--summary-every", "1",
                                      "--trainable-scopes", "cbam,fc8"))
        out, err = capsys.readouterr()
        assert rc == 0, err
        assert out.strip().endswith("TensorBoard: %s --logdir %s"
                                    % (tensorboard, shlex.quote(train_dir)))
        val_acc = [float(a) for a in re.findall(r"validation accuracy ([\d.]+) ", err)]
        assert len(val_acc) == 2

        train_tags = ("train/loss", "train/cross_entropy", "train/accuracy",
                      "train/learning_rate")
        val_tags = ("validation/accuracy", "validation/cross_entropy")
        deadline = time.time() + SERVER_TIMEOUT
        scalars = {}
        while True:
            assert proc.poll() is None, "tensorboard exited: %s" % open(log_path).read()
            try:
                for tag in train_tags + val_tags:
                    scalars[tag] = _get_json(port, "/data/plugin/scalars/scalars",
                                             run=".", tag=tag)
                images = _get_json(port, "/data/plugin/images/images", run=".",
                                   tag="validation/attention_map", sample=0)
                if (all(len(scalars[t]) == 6 for t in train_tags)
                        and all(len(scalars[t]) == 2 for t in val_tags)
                        and len(images) == 2):
                    break
            except (urllib.error.URLError, ConnectionError, ValueError, KeyError):
                pass  # not up yet, or the run not loaded yet
            assert time.time() < deadline, (
                "TensorBoard did not serve the run within %d s; log:\n%s"
                % (SERVER_TIMEOUT, open(log_path).read()[-3000:]))
            time.sleep(0.5)

        tags = _get_json(port, "/data/plugin/scalars/tags")
        assert set(train_tags + val_tags) <= set(tags["."])
        # Scalars are [wall_time, step, value].
        for tag in train_tags:
            assert [s[1] for s in scalars[tag]] == [1, 2, 3, 4, 5, 6], tag
            assert all(math.isfinite(s[2]) for s in scalars[tag]), tag
        # The learning rate logged at step k is the one step k used: cosine from
        # 1e-4 over the 6 steps, read at global step k - 1.
        np.testing.assert_allclose(
            [s[2] for s in scalars["train/learning_rate"]],
            [0.5e-4 * (1 + math.cos(math.pi * k / 6.0)) for k in range(6)], rtol=1e-5)
        # Batch accuracy: batches of 4, 4 and 1 images.
        for (_, step, acc), size in zip(scalars["train/accuracy"], (4, 4, 1) * 2):
            assert acc * size == pytest.approx(round(acc * size)), (step, acc)
        for (_, _, loss), (_, _, xent) in zip(scalars["train/loss"],
                                             scalars["train/cross_entropy"]):
            assert loss >= xent - 1e-3 * abs(xent)  # cross-entropy + weight decay
        # Validation at each epoch's end, the accuracy the log printed.
        assert [s[1] for s in scalars["validation/accuracy"]] == [3, 6]
        np.testing.assert_allclose([s[2] for s in scalars["validation/accuracy"]], val_acc,
                                   atol=5e-4)
        assert [s[1] for s in scalars["validation/cross_entropy"]] == [3, 6]
        assert all(s[2] >= 0 for s in scalars["validation/cross_entropy"])

        # The attention images: one figure per validation, as written.
        image_tags = _get_json(port, "/data/plugin/images/tags")["."]
        assert image_tags["validation/attention_map"]["samples"] == 1
        assert [entry["step"] for entry in images] == [3, 6]
        written = _event_images(train_dir)
        for entry in images:
            png = _get(port, "/data/plugin/images/individualImage?" + entry["query"])
            assert png == written[entry["step"]]
            figure = np.asarray(Image.open(io.BytesIO(png)))
            # 2 rows (--attention-images 2) of input, overlay, map, colour bar.
            assert figure.shape[1] > 3 * 224 and figure.shape[0] > 2 * 224
        assert "TensorBoard attention maps, step 6: 2 maps 1x1" in err
    finally:
        _stop(proc)
        assert proc.poll() is not None
        with pytest.raises(ProcessLookupError):
            os.killpg(proc.pid, 0)
