"""What the trainer's end-to-end tests share: a tiny generated image folder
(3 classes of 40x40 shapes, plus one corrupt file), the trainer's arguments at
32 px, and readers of a run folder's checkpoints."""
import os
import time

import numpy as np
import tensorflow as tf
from PIL import Image

from vgg_patch.training import run_dir


CLASSES = ("circle", "square", "stripes")


def make_image(kind, seed, size=40):
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[:size, :size]
    base = np.zeros((size, size, 3), np.float32)
    if kind == "circle":
        c = size / 2 + rng.uniform(-4, 4, 2)
        base[((yy - c[0]) ** 2 + (xx - c[1]) ** 2) < (size / 4) ** 2] = (1.0, 0.2, 0.2)
    elif kind == "square":
        o = rng.randint(4, 12)
        base[o:o + size // 2, o:o + size // 2] = (0.2, 1.0, 0.2)
    else:
        base[(xx // 5) % 2 == 0] = (0.2, 0.2, 1.0)
    base += rng.uniform(0, 0.2, base.shape)
    return (np.clip(base, 0, 1) * 255).astype(np.uint8)


def make_image_folder(root, per_class=8, corrupt=True):
    """3 classes x ``per_class`` PNG/JPEG images, plus one corrupt file."""
    for label, kind in enumerate(CLASSES):
        os.makedirs(os.path.join(root, kind), exist_ok=True)
        for i in range(per_class):
            ext = "png" if i % 2 else "jpg"
            Image.fromarray(make_image(kind, 100 * label + i)).save(
                os.path.join(root, kind, "%s_%d.%s" % (kind, i, ext)))
    if corrupt:
        with open(os.path.join(root, CLASSES[0], "broken.jpg"), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0 this is not a JPEG")
    return root


def base_args(data_dir, train_dir, *extra, conv_path="--no-winograd"):
    """The trainer's arguments at 32 px, then ``extra`` (a later flag wins).

    ``conv_path`` is ``--no-winograd`` unless asked: the direct convolutions
    spare each run Winograd's XLA compile where the convolution path is not what
    a test checks (the default path runs end to end in test_cli_train_story's
    first run, --winograd in test_cli_precision); None gives the default path.
    """
    return ["--data-dir", data_dir, "--train-dir", train_dir, "--image-size", "32",
            "--batch-size", "4", "--optimizer", "momentum", "--learning-rate", "1e-4",
            "--warmup-epochs", "0",
            "--keep-checkpoints", "2", "--attention-images", "2", "--dropout", "0.5",
            "--summary-every", "2",
            "--seed", "1"] + ([conv_path] if conv_path else []) + list(extra)


def ckpt_value(prefix, name):
    return tf.train.load_checkpoint(prefix).get_tensor(name)


def saved_steps(train_dir):
    return sorted(s for s, _ in run_dir.checkpoint_candidates(train_dir))


def newest_step(train_dir):
    return max(saved_steps(train_dir))


def wait_for(predicate, proc, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError("training exited (%s) before %s" % (proc.returncode, what))
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("timed out waiting for %s" % what)


def temp_files(train_dir):
    return [os.path.join(root, name) for root, _, names in os.walk(train_dir)
            for name in names if ".tempstate" in name or name.endswith(".tmp")]
