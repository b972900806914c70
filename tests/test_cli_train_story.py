"""vgg19-cbam-train end to end on a tiny generated image folder, then predict.

The real VGG19+CBAM trains for a few steps at 32x32 on 3 generated classes.
To stay fast, the tests that train share ONE run folder and form a story, in
file order: a first run (module fixture), checks of what it wrote, predict,
then a NaN loss, resume, Ctrl-C and SIGKILL, each continuing from whatever
checkpoint the folder holds (so each also passes when run alone). Frozen
scopes (fine-tuning from the first run's export) use a folder of their own;
bad inputs, full disks and signals in other phases are in
test_cli_train_errors.py, the precision flags in test_cli_precision.py.
"""
import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from train_helpers import (CLASSES, base_args, ckpt_value, make_image, make_image_folder,
                           newest_step, saved_steps, wait_for)
from vgg_patch import Vgg19
from vgg_patch.cli import predict as predict_cli
from vgg_patch.cli import train as train_cli


@pytest.fixture(scope="module")
def data_dir(module_tmp_path):
    return make_image_folder(str(module_tmp_path / "data"))


@pytest.fixture(scope="module")
def first_run(data_dir, module_tmp_path):
    """7 steps: epoch 1 is 5 steps (18 train images, batch 4), then 2 more; the
    commands' default convolution path (the later runs go direct, see base_args)."""
    (module_tmp_path / "run").mkdir()
    train_dir = str(module_tmp_path / "run" / "train")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = train_cli.main(base_args(data_dir, train_dir, "--epochs", "3",
                                      "--max-steps", "7", "--checkpoint-every", "6",
                                      conv_path=None))
    return {"rc": rc, "out": out.getvalue(), "err": err.getvalue(), "dir": train_dir}


def test_first_run_trains_validates_and_writes_everything(first_run, data_dir):
    assert first_run["rc"] == 0, first_run["err"]
    d = first_run["dir"]
    # One summary line on stdout.
    lines = first_run["out"].strip().splitlines()
    assert len(lines) == 1
    # The default path at 32 px on CPU: Winograd where the table says it pays.
    assert "convolutions: Winograd F(2x2, 3x3) in conv3_1-4, conv4_1-4, direct " \
        "elsewhere (default on CPU" in first_run["err"]
    assert re.match(r"best validation accuracy: \d\.\d{3} \(epoch 1; 7 steps, ", lines[0])
    assert os.path.join(d, "export", "vgg19-cbam.npy") in lines[0]
    # The corrupt image was skipped and counted.
    assert "skipping corrupt image %s" % os.path.join(data_dir, "circle", "broken.jpg") \
        in first_run["err"]
    assert "18 training and 6 validation images, 3 classes (1 corrupt skipped)" \
        in first_run["err"]
    # Checkpoints at 5 (epoch end), 6 (every 6 steps) and 7 (end); 2 are kept.
    assert saved_steps(d) == [6, 7]
    assert tf.train.latest_checkpoint(d) == os.path.join(d, "model.ckpt-7")
    reader = tf.train.load_checkpoint(os.path.join(d, "model.ckpt-7"))
    assert reader.get_tensor("global_step") == 7
    assert reader.get_tensor("train_state/epoch") == 1
    assert reader.get_tensor("train_state/epoch_position") == 8  # 2 batches of 4
    names = reader.get_variable_to_shape_map()
    assert any(n.startswith("cbam_0/") and n.endswith("/Momentum") for n in names)
    assert "epoch 1/3: validation accuracy" in first_run["err"]
    with open(os.path.join(d, "classes.txt")) as f:
        assert f.read().split() == list(CLASSES)
    with open(os.path.join(d, "run.json")) as f:
        run = json.load(f)
    assert run["image_size"] == 32 and run["num_classes"] == 3
    # The progress bar (not a terminal: one line per tenth).
    assert re.search(r"epoch 1/3 \|#+-*\| \d/5 loss [\d.e+-]+ acc [\d.]+ [\d.]+ img/s",
                     first_run["err"])


def test_summaries_hold_loss_accuracy_lr_and_attention_images(first_run):
    tags, images = set(), []
    for name in os.listdir(first_run["dir"]):
        if name.startswith("events.out.tfevents"):
            # summary_iterator reads without eager execution (both TF behaviours)
            for event in tf.compat.v1.train.summary_iterator(
                    os.path.join(first_run["dir"], name)):
                for value in event.summary.value:
                    tags.add(value.tag)
                    if value.HasField("image"):
                        images.append(value.image)
    assert {"train/loss", "train/accuracy", "train/learning_rate",
            "validation/accuracy"} <= tags
    assert any(t.startswith("validation/attention_map") for t in tags)
    # One figure per validation (vgg_patch.figure, as predict draws it): 2 rows.
    assert images and images[0].width > 3 * 224 and images[0].height > 2 * 224


def test_export_loads_back_into_vgg19(first_run, graph):
    d = first_run["dir"]
    best = tf.train.latest_checkpoint(os.path.join(d, "best"))
    assert best is not None
    images = tf.compat.v1.placeholder(tf.float32, [None, 32, 32, 3])
    vgg = Vgg19(os.path.join(d, "export", "vgg19-cbam.npy"), trainable=False,
                num_classes=3)
    vgg.build(images, train_mode=False)
    reader = tf.train.load_checkpoint(best)
    saved = reader.get_variable_to_shape_map()
    with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        names = []
        for var in tf.compat.v1.global_variables():
            np.testing.assert_array_equal(sess.run(var), reader.get_tensor(var.op.name),
                                          err_msg=var.op.name)
            names.append(var.op.name)
    assert sorted(names) == sorted(saved)  # every weight, CBAM's moving stats too
    assert any(name.startswith("cbam_0/") for name in names)


def test_predict_prints_top_classes_and_draws_attention(first_run, data_dir, tmp_path,
                                                         capsys):
    images = [os.path.join(data_dir, "square", "square_1.png"),
              os.path.join(data_dir, "stripes", "stripes_2.jpg")]
    out_png = str(tmp_path / "maps" / "att.png")
    rc = predict_cli.main(["--train-dir", first_run["dir"], "--attention-map", out_png]
                          + images)
    out, err = capsys.readouterr()
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == images[0] and lines[4] == images[1]
    probs = [float(line.split()[0]) for line in lines[1:4]]
    assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-3
    assert sorted(line.split()[1] for line in lines[1:4]) == sorted(CLASSES)
    figure = np.asarray(Image.open(out_png))
    assert figure.shape[1] > 3 * 224 and figure.shape[0] > 2 * 224  # 2 rows of 3 panels
    assert "attention map 1x1" in err  # 32 px -> pool5 is 1x1
    # The same weights with class names from a synset file and an explicit size.
    synset = tmp_path / "synset.txt"
    synset.write_text("".join("n%08d %s, a %s\n" % (i, c, c) for i, c in enumerate(CLASSES)))
    rc = predict_cli.main(["--weights", os.path.join(first_run["dir"], "export",
                                                     "vgg19-cbam.npy"),
                           "--synset", str(synset), "--image-size", "32", "--top-k", "2",
                           images[0]])
    out2 = capsys.readouterr().out.splitlines()
    assert rc == 0 and len(out2) == 3
    top = {line.split(None, 1)[1] for line in out2[1:]}
    assert top <= {"%s, a %s" % (c, c) for c in CLASSES}
    assert [float(line.split()[0]) for line in out2[1:]] == probs[:2]


def test_predict_bad_inputs(first_run, tmp_path, capsys):
    img = str(tmp_path / "x.png")
    Image.fromarray(make_image("circle", 5)).save(img)
    assert predict_cli.main(["--train-dir", first_run["dir"], str(tmp_path / "no.png")]) == 2
    assert "no such image file" in capsys.readouterr().err
    assert predict_cli.main(["--weights", str(tmp_path / "none.npy"), img]) == 2
    assert "--weights" in capsys.readouterr().err
    assert predict_cli.main(["--train-dir", str(tmp_path), img]) == 2
    assert "has no exported weights" in capsys.readouterr().err
    junk = str(tmp_path / "junk.png")
    with open(junk, "wb") as f:
        f.write(b"not a png")
    rc = predict_cli.main(["--train-dir", first_run["dir"], img, junk])
    captured = capsys.readouterr()
    assert rc == 1 and "skipping corrupt image %s" % junk in captured.err
    assert captured.out.splitlines()[0] == img


def _position(train_dir, step):
    prefix = os.path.join(train_dir, "model.ckpt-%d" % step)
    return (int(ckpt_value(prefix, "train_state/epoch")),
            int(ckpt_value(prefix, "train_state/epoch_position")))


def _advance(epoch, position, steps, n_train=18, batch=4):
    for _ in range(steps):
        position += min(batch, n_train - position)
        if position >= n_train:
            epoch, position = epoch + 1, 0
    return epoch, position


def test_nan_loss_stops_and_keeps_the_last_checkpoint(first_run, data_dir, capsys):
    d = first_run["dir"]
    before = {step: ckpt_value(os.path.join(d, "model.ckpt-%d" % step), "fc7/fc7_weights")
              for step in saved_steps(d)}
    start = max(before)
    # 1e38 makes the first step's update overflow, so the next loss is NaN (or, at
    # the latest, the end-of-run save finds infinite weights). Run before the
    # resume test: from step 7 no epoch ends (and nothing is saved) for 2 steps.
    rc = train_cli.main(base_args(data_dir, d, "--epochs", "3", "--max-steps",
                                  str(start + 2), "--learning-rate", "1e38",
                                  "--lr-schedule", "constant"))
    err = capsys.readouterr().err
    assert rc == 1
    message = [line for line in err.splitlines() if "error:" in line]
    assert len(message) == 1, err
    match = re.search(r"the (loss|weights) became NaN or infinite at step (\d+) "
                      r"\(learning rate 1e\+38 too high\?\); (stopped without applying "
                      r"that step|not saved); last good checkpoint: (\S+)$", message[0])
    assert match, message
    assert int(match.group(2)) == start + 2
    assert match.group(4) == os.path.join(d, "model.ckpt-%d" % start)
    # Nothing was saved, and every checkpoint is as it was.
    assert saved_steps(d) == sorted(before)
    for step, values in before.items():
        np.testing.assert_array_equal(
            values, ckpt_value(os.path.join(d, "model.ckpt-%d" % step), "fc7/fc7_weights"))


def test_rerun_resumes_at_the_saved_step(first_run, data_dir, capsys):
    d = first_run["dir"]
    start = newest_step(d)
    epoch, position = _position(d, start)
    rc = train_cli.main(base_args(data_dir, d, "--epochs", "3", "--max-steps",
                                  str(start + 2), "--checkpoint-every", "100"))
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "resuming from %s: step %d, epoch %d, %d images into the epoch" % (
        os.path.join(d, "model.ckpt-%d" % start), start, epoch + 1, position) in err
    assert saved_steps(d)[-2:] == [start, start + 2]
    assert _position(d, start + 2) == _advance(epoch, position, 2)
    # The weights moved on.
    assert not np.array_equal(
        ckpt_value(os.path.join(d, "model.ckpt-%d" % (start + 2)), "fc8/fc8_weights"),
        ckpt_value(os.path.join(d, "model.ckpt-%d" % start), "fc8/fc8_weights"))


def test_resume_with_other_options_is_refused(first_run, data_dir, capsys):
    d = first_run["dir"]
    steps = saved_steps(d)
    rc = train_cli.main(base_args(data_dir, d, "--optimizer", "adam"))
    err = capsys.readouterr().err
    assert rc == 2
    newest = re.escape(os.path.join(d, "model.ckpt-%d" % steps[-1]))
    assert re.search(r"error: checkpoint %s was written with other options: it has no "
                     r"variable (beta1_power|\S+/Adam) \(changed --optimizer" % newest,
                     err), err
    assert saved_steps(d) == steps


def _interrupt_after_new_checkpoint(train_dir, after_step, timeout=120):
    """From a thread: SIGINT this process once a checkpoint newer than after_step exists."""
    def watch():
        deadline = time.time() + timeout
        while time.time() < deadline:
            if saved_steps(train_dir) and newest_step(train_dir) > after_step:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.1)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


# Long: one story (Ctrl-C, resume, SIGKILL, resume past damaged files) on one folder.
def test_ctrl_c_saves_and_sigkill_resumes_with_nothing_lost(first_run, data_dir, tmp_path,
                                                            capsys):
    d = first_run["dir"]
    start = newest_step(d)
    args = base_args(data_dir, d, "--epochs", "50", "--checkpoint-every", "2",
                     "--attention-images", "0")
    # Ctrl-C (in this process): the handler lets the step finish, saves, exits 130.
    watcher = _interrupt_after_new_checkpoint(d, start)
    rc = train_cli.main(args)
    watcher.join()
    err = capsys.readouterr().err
    assert rc == 130, err
    match = re.search(r"interrupted: saved checkpoint (\S+) \(step (\d+)\)", err)
    assert match, err
    stopped = int(match.group(2))
    assert stopped > start and "Traceback" not in err
    assert tf.train.latest_checkpoint(d) == os.path.join(d, "model.ckpt-%d" % stopped)
    stopped_position = _position(d, stopped)

    # The same command in a subprocess resumes there; SIGKILL it after a newer save.
    log = open(str(tmp_path / "log.txt"), "w+")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-m", "vgg_patch.train"] + args,
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: newest_step(d) >= stopped + 2, proc, 150,
                  "a checkpoint after the resume")
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    log.seek(0)
    text = log.read()
    assert "resuming from %s: step %d, epoch %d, %d images into the epoch" % (
        os.path.join(d, "model.ckpt-%d" % stopped), stopped, stopped_position[0] + 1,
        stopped_position[1]) in text, text
    newest = newest_step(d)
    assert _position(d, newest) == _advance(*stopped_position, newest - stopped)

    # Newer checkpoints left half-written by a kill mid-save must not be trusted:
    # one without its data file, one whose data file was cut short.
    with open(os.path.join(d, "model.ckpt-%d.index" % (newest + 50)), "wb") as f:
        f.write(b"partial")
    good = os.path.join(d, "model.ckpt-%d" % newest)
    cut = os.path.join(d, "model.ckpt-%d" % (newest + 40))
    shutil.copy(good + ".index", cut + ".index")
    with open(good + ".data-00000-of-00001", "rb") as src:
        head = src.read(1 << 20)  # its first MB of some 300: cut short
    with open(cut + ".data-00000-of-00001", "wb") as f:
        f.write(head)
    rc = train_cli.main(base_args(data_dir, d, "--epochs", "50", "--max-steps",
                                  str(newest + 1), "--attention-images", "0"))
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "ignoring incomplete checkpoint %s" % os.path.join(
        d, "model.ckpt-%d" % (newest + 50)) in err
    assert "checkpoint %s does not load" % cut in err
    assert "resuming from %s: step %d" % (good, newest) in err
    assert tf.train.latest_checkpoint(d) == os.path.join(d, "model.ckpt-%d" % (newest + 1))
    assert _position(d, newest + 1) == _advance(*_position(d, newest), 1)


def test_fine_tune_from_weights_with_frozen_scopes(first_run, data_dir, tmp_path,
                                                   capsys):
    # Start a new run from the first run's export (a save_npy file), training
    # only CBAM and fc8: the rest must hold the file's values, step after step.
    export = os.path.join(first_run["dir"], "export", "vgg19-cbam.npy")
    weights = np.load(export, allow_pickle=True).item()  # our own file, trusted
    d = str(tmp_path / "frozen")
    rc = train_cli.main(base_args(data_dir, d, "--max-steps", "2", "--checkpoint-every",
                                  "1", "--trainable-scopes", "cbam,fc8", "--weights",
                                  export, "--attention-images", "0"))
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "starting from weights %s" % export in err
    one, two = (os.path.join(d, "model.ckpt-%d" % s) for s in (1, 2))
    for layer, index, name in (("conv1_1", 0, "conv1_1/conv1_1_filters"),
                               ("conv5_4", 1, "conv5_4/conv5_4_biases"),
                               ("fc6", 0, "fc6/fc6_weights"), ("fc7", 1, "fc7/fc7_biases")):
        np.testing.assert_array_equal(ckpt_value(one, name), weights[layer][index])
        np.testing.assert_array_equal(ckpt_value(two, name), weights[layer][index])
    assert not np.array_equal(ckpt_value(two, "fc8/fc8_weights"), weights["fc8"][0])
    assert not np.array_equal(ckpt_value(one, "fc8/fc8_weights"),
                              ckpt_value(two, "fc8/fc8_weights"))
    names = tf.train.load_checkpoint(two).get_variable_to_shape_map()
    assert not any(n.endswith("/Momentum") and not n.startswith(("cbam", "fc8"))
                   for n in names)
    assert any(n.endswith("/Momentum") and n.startswith("cbam_0/") for n in names)
