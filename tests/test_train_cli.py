"""vgg19-cbam-train end to end on a tiny generated image folder, then predict.

The real VGG19+CBAM trains for a few steps at 32x32 on 3 generated classes.
To stay fast, the tests that train share ONE run folder and form a story, in
file order: a first run (module fixture), checks of what it wrote, predict,
then a NaN loss, resume, Ctrl-C and SIGKILL, each continuing from whatever
checkpoint the folder holds (so each also passes when run alone). Frozen
scopes (fine-tuning from the first run's export) and the bad inputs use
folders of their own.
"""
import contextlib
import errno
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

from vgg_patch import Vgg19
from vgg_patch import predict as predict_lib
from vgg_patch import train as train_lib

CLASSES = ("circle", "square", "stripes")


def _make_image(kind, seed, size=40):
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
            Image.fromarray(_make_image(kind, 100 * label + i)).save(
                os.path.join(root, kind, "%s_%d.%s" % (kind, i, ext)))
    if corrupt:
        with open(os.path.join(root, CLASSES[0], "broken.jpg"), "wb") as f:
            f.write(b"\xff\xd8\xff\xe0 this is not a JPEG")
    return root


def base_args(data_dir, train_dir, *extra):
    return ["--data-dir", data_dir, "--train-dir", train_dir, "--image-size", "32",
            "--batch-size", "4", "--optimizer", "momentum", "--learning-rate", "1e-4",
            "--warmup-epochs", "0",
            "--keep-checkpoints", "2", "--attention-images", "2", "--dropout", "0.5",
            "--summary-every", "2",
            "--seed", "1"] + list(extra)


def ckpt_value(prefix, name):
    return tf.train.load_checkpoint(prefix).get_tensor(name)


def saved_steps(train_dir):
    return sorted(s for s, _ in train_lib.checkpoint_candidates(train_dir))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_image_folder(str(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="module")
def first_run(data_dir, tmp_path_factory):
    """7 steps: epoch 1 is 5 steps (18 train images, batch 4), then 2 more."""
    train_dir = str(tmp_path_factory.mktemp("run") / "train")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = train_lib.main(base_args(data_dir, train_dir, "--epochs", "3",
                                      "--max-steps", "7", "--checkpoint-every", "6"))
    return {"rc": rc, "out": out.getvalue(), "err": err.getvalue(), "dir": train_dir}


def test_first_run_trains_validates_and_writes_everything(first_run, data_dir):
    assert first_run["rc"] == 0, first_run["err"]
    d = first_run["dir"]
    # One summary line on stdout.
    lines = first_run["out"].strip().splitlines()
    assert len(lines) == 1
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
    rc = predict_lib.main(["--train-dir", first_run["dir"], "--attention-map", out_png]
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
    rc = predict_lib.main(["--weights", os.path.join(first_run["dir"], "export",
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
    Image.fromarray(_make_image("circle", 5)).save(img)
    assert predict_lib.main(["--train-dir", first_run["dir"], str(tmp_path / "no.png")]) == 2
    assert "no such image file" in capsys.readouterr().err
    assert predict_lib.main(["--weights", str(tmp_path / "none.npy"), img]) == 2
    assert "--weights" in capsys.readouterr().err
    assert predict_lib.main(["--train-dir", str(tmp_path), img]) == 2
    assert "has no exported weights" in capsys.readouterr().err
    junk = str(tmp_path / "junk.png")
    with open(junk, "wb") as f:
        f.write(b"not a png")
    rc = predict_lib.main(["--train-dir", first_run["dir"], img, junk])
    captured = capsys.readouterr()
    assert rc == 1 and "skipping corrupt image %s" % junk in captured.err
    assert captured.out.splitlines()[0] == img


def _newest(train_dir):
    return max(saved_steps(train_dir))


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
    rc = train_lib.main(base_args(data_dir, d, "--epochs", "3", "--max-steps",
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


def _graph_of_defaults(tmp_path, *argv, num_classes=2):
    """build_graph with the options ``--data-dir DIR *argv`` resolve to."""
    args = train_lib.resolve_config(train_lib.build_parser().parse_args(
        ["--data-dir", str(tmp_path)] + list(argv)))
    return train_lib.build_graph(args, num_classes, 5, 50)


def test_a_nan_step_changes_no_saved_variable(graph, tmp_path):
    g = _graph_of_defaults(tmp_path, "--image-size", "32", "--batch-size", "2")
    names = [v.op.name for v in g.saved_variables]
    stats = [n for n in names if n.endswith(("moving_mean", "moving_variance"))]
    assert stats and any(n.endswith("/Adam") for n in names), names
    assert "global_step" in names
    images = np.random.RandomState(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    feed = {g.images: images, g.labels: np.array([0, 1]), g.train_mode: True}
    with tf.compat.v1.Session() as sess:
        sess.run(g.init)
        sess.run(g.copy_statistics)
        first = dict(zip(names, sess.run(g.saved_variables)))
        assert train_lib.run_step(sess, g, [g.train_op, g.loss], feed) is not None
        before = dict(zip(names, sess.run(g.saved_variables)))
        for name in stats:  # a good step moves the statistics...
            assert not np.array_equal(before[name], first[name]), name
        # NaN logits weights: NaN loss and gradients, while the batch-norm
        # statistics (before fc8) still move and must be put back. (NaN put
        # earlier is not reliable: TF 2.16's oneDNN ReLU maps NaN to 0.)
        fc8 = [v for v in g.saved_variables if v.op.name == "fc8/fc8_weights"][0]
        good_fc8 = sess.run(fc8)
        sess.run(fc8.assign(tf.fill(tf.shape(fc8), np.float32(np.nan))))
        before = dict(zip(names, sess.run(g.saved_variables)))
        assert train_lib.run_step(sess, g, [g.train_op, g.loss], feed) is None
        after = dict(zip(names, sess.run(g.saved_variables)))
        for name in names:  # ...a failing one changes nothing at all
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)
        sess.run(fc8.assign(good_fc8))
        assert sess.run(g.weights_finite)
        # The check before a save covers every saved variable, statistics included.
        stat = [v for v in g.saved_variables if v.op.name == stats[0]][0]
        sess.run(stat.assign(tf.fill(tf.shape(stat), np.float32(np.inf))))
        assert not sess.run(g.weights_finite)


def _from_scratch():
    bench = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import from_scratch  # pylint: disable=import-outside-toplevel
    return from_scratch


@pytest.mark.parametrize("num_classes,repeat_batch", [(2, False), (10, True)])
def test_from_scratch_defaults_train_at_32_px(num_classes, repeat_batch):
    # No --weights, no recipe flags: the defaults must train, not diverge. Two
    # classes learn from fresh batches within 12 steps; ten fit one batch.
    row = _from_scratch().measure(32, num_classes, seed=0, steps=12, batch=8,
                                  repeat_batch=repeat_batch, eval_images=8)
    losses = row["losses"]
    assert row["nan_at"] is None and len(losses) == 12 and np.all(np.isfinite(losses))
    assert 0.8 * np.log(num_classes) < losses[0] < 1.5 * np.log(num_classes), losses
    assert max(losses) < 2.0 * np.log(num_classes), losses
    assert np.mean(losses[-4:]) < 0.8 * losses[0], losses


@pytest.mark.slow
def test_from_scratch_defaults_train_at_224_px():
    # Two steps at 224 px, 1000 classes, on one batch: finite, near ln 1000, falling.
    row = _from_scratch().measure(224, 1000, seed=0, steps=3, batch=2, repeat_batch=True,
                                  eval_images=2)
    losses = row["losses"]
    assert row["nan_at"] is None and np.all(np.isfinite(losses)), losses
    assert 0.8 * np.log(1000) < losses[0] < 1.5 * np.log(1000), losses
    assert losses[2] < losses[0], losses


def test_rerun_resumes_at_the_saved_step(first_run, data_dir, capsys):
    d = first_run["dir"]
    start = _newest(d)
    epoch, position = _position(d, start)
    rc = train_lib.main(base_args(data_dir, d, "--epochs", "3", "--max-steps",
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
    rc = train_lib.main(base_args(data_dir, d, "--optimizer", "adam"))
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
            if saved_steps(train_dir) and _newest(train_dir) > after_step:
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.1)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _wait_for(predicate, proc, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError("training exited (%s) before %s" % (proc.returncode, what))
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("timed out waiting for %s" % what)


def test_ctrl_c_saves_and_sigkill_resumes_with_nothing_lost(first_run, data_dir, tmp_path,
                                                            capsys):
    d = first_run["dir"]
    start = _newest(d)
    args = base_args(data_dir, d, "--epochs", "50", "--checkpoint-every", "2",
                     "--attention-images", "0")
    # Ctrl-C (in this process): the handler lets the step finish, saves, exits 130.
    watcher = _interrupt_after_new_checkpoint(d, start)
    rc = train_lib.main(args)
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
        _wait_for(lambda: _newest(d) >= stopped + 2, proc, 150,
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
    newest = _newest(d)
    assert _position(d, newest) == _advance(*stopped_position, newest - stopped)

    # Newer checkpoints left half-written by a kill mid-save must not be trusted:
    # one without its data file, one whose data file was cut short.
    with open(os.path.join(d, "model.ckpt-%d.index" % (newest + 50)), "wb") as f:
        f.write(b"partial")
    good = os.path.join(d, "model.ckpt-%d" % newest)
    cut = os.path.join(d, "model.ckpt-%d" % (newest + 40))
    shutil.copy(good + ".index", cut + ".index")
    with open(good + ".data-00000-of-00001", "rb") as src:
        blob = src.read()
    with open(cut + ".data-00000-of-00001", "wb") as f:
        f.write(blob[:len(blob) // 2])
    rc = train_lib.main(base_args(data_dir, d, "--epochs", "50", "--max-steps",
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
    rc = train_lib.main(base_args(data_dir, d, "--max-steps", "2", "--checkpoint-every",
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


@pytest.mark.parametrize("case", ["missing", "empty", "one_class", "bad_weights",
                                  "no_weights_file", "unknown_scope", "bad_value",
                                  "unwritable_train_dir", "winograd_with_bf16"])
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, data_dir, capsys):
    args = ["--train-dir", str(tmp_path / "t"), "--image-size", "32", "--max-steps", "1"]
    if case == "missing":
        args += ["--data-dir", str(tmp_path / "nowhere")]
        expected = "--data-dir '%s' does not exist" % (tmp_path / "nowhere")
    elif case == "empty":
        (tmp_path / "d" / "a").mkdir(parents=True)
        args += ["--data-dir", str(tmp_path / "d")]
        expected = "holds no images"
    elif case == "one_class":
        make_image_folder(str(tmp_path / "d"), per_class=2, corrupt=False)
        for kind in CLASSES[1:]:
            shutil.rmtree(str(tmp_path / "d" / kind))
        args += ["--data-dir", str(tmp_path / "d")]
        expected = "only one class ('circle')"
    elif case == "bad_weights":
        bad = tmp_path / "vgg19.npy"
        bad.write_bytes(b"\x93NUMPY garbage, not a weights file")
        args += ["--data-dir", data_dir, "--weights", str(bad)]
        expected = str(bad)
    elif case == "no_weights_file":
        args += ["--data-dir", data_dir, "--weights", str(tmp_path / "vgg19.npy")]
        expected = "--weights '%s': no such file" % (tmp_path / "vgg19.npy")
    elif case == "unknown_scope":
        args += ["--data-dir", data_dir, "--trainable-scopes", "cbam,conv9"]
        expected = "--trainable-scopes: 'conv9' matches no trainable variable; scopes are"
    elif case == "bad_value":
        args += ["--data-dir", data_dir, "--learning-rate", "-1"]
        expected = "--learning-rate must be a positive number, got -1.0"
    elif case == "winograd_with_bf16":
        args += ["--data-dir", data_dir, "--winograd", "--bf16"]
        expected = "--winograd and --bf16 do not go together"
    else:
        (tmp_path / "file").write_text("a file, not a folder")
        args += ["--data-dir", data_dir, "--train-dir", str(tmp_path / "file" / "run")]
        expected = "--train-dir '%s' cannot be written" % (tmp_path / "file" / "run")
    rc = train_lib.main(args)
    err = capsys.readouterr().err
    assert rc == 2
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], err
    assert "Traceback" not in err


def _one_step_run(tmp_path, capsys, flag):
    """Trains one step with ``flag`` on a small folder; returns (train_dir, an image)."""
    data = make_image_folder(str(tmp_path / "data"), per_class=4, corrupt=False)
    train_dir = str(tmp_path / "train")
    rc = train_lib.main(base_args(data, train_dir, "--epochs", "1", "--max-steps", "1",
                                  flag, "-q"))
    assert rc == 0, capsys.readouterr().err
    assert saved_steps(train_dir) == [1]
    return train_dir, os.path.join(data, "square", "square_0.jpg")


def test_bf16_flag_trains_and_predicts(tmp_path, capsys):
    train_dir, image = _one_step_run(tmp_path, capsys, "--bf16")
    capsys.readouterr()
    assert predict_lib.main(["--train-dir", train_dir, "--bf16", image]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == image
    probs = [float(line.split()[0]) for line in lines[1:]]
    assert len(probs) == 3 and abs(sum(probs) - 1.0) < 0.02


def test_winograd_flag_trains_and_predicts_as_the_direct_network(tmp_path, capsys):
    train_dir, image = _one_step_run(tmp_path, capsys, "--winograd")
    outputs = {}
    for flags in ([], ["--winograd"]):
        capsys.readouterr()
        assert predict_lib.main(["--train-dir", train_dir, image] + flags) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines[0] == image
        outputs[tuple(flags)] = {name: float(p) for p, name in
                                 (line.split(None, 1) for line in lines[1:])}
    direct, wino = outputs[()], outputs[("--winograd",)]
    assert sorted(direct) == sorted(wino) == sorted(CLASSES)
    for name in CLASSES:  # printed rounded; equal up to float32 round-off
        assert abs(wino[name] - direct[name]) < 2e-3, (direct, wino)
    capsys.readouterr()
    assert predict_lib.main(["--train-dir", train_dir, image, "--winograd", "--bf16"]) == 2
    assert "--winograd and --bf16 do not go together" in capsys.readouterr().err


def _temp_files(train_dir):
    return [os.path.join(root, name) for root, _, names in os.walk(train_dir)
            for name in names if ".tempstate" in name or name.endswith(".tmp")]


def test_sigterm_while_building_the_graph_exits_130_with_nothing_saved(data_dir, tmp_path):
    train_dir = str(tmp_path / "train")
    log = open(str(tmp_path / "log.txt"), "w+")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-m", "vgg_patch.train"]
                            + base_args(data_dir, train_dir, "--max-steps", "5"),
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_for(lambda: "building the graph" in open(log.name).read(), proc, 120,
                  "the graph building to start")
        proc.send_signal(signal.SIGTERM)
        sent = time.time()
        proc.wait(60)
        seconds = time.time() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    log.seek(0)
    lines = log.read().strip().splitlines()
    assert proc.returncode == 130, lines
    assert re.match(r"vgg19-cbam-train: interrupted (while building the graph|while "
                    r"initialising), before any training step: nothing to save; run the "
                    r"same command again to start or resume$", lines[-1]), lines
    assert "SIGTERM received" in lines[-2] and "Traceback" not in "\n".join(lines)
    assert seconds < 30, seconds  # the rest of the graph, then out
    assert saved_steps(train_dir) == [] and _temp_files(train_dir) == []
    assert not [n for n in os.listdir(train_dir) if n.startswith(("model.ckpt", "best",
                                                                 "export"))]


def test_image_size_10000_is_refused_before_any_op(data_dir, tmp_path, capsys):
    t0 = time.time()
    rc = train_lib.main(base_args(data_dir, str(tmp_path / "t"), "--image-size", "10000"))
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert re.search(r"--image-size 10000 with --batch-size 4 needs about [\d.]+ TB "
                     r"\(205,492,969,383 parameters with momentum, plus activations\)",
                     errors[0]), errors
    assert time.time() - t0 < 30


def _mount_tmpfs(path, size, request):
    """Mounts a ``size`` tmpfs at ``path`` (created), or skips the test if we cannot."""
    os.makedirs(path, exist_ok=True)
    try:
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs",
                              path], capture_output=True, text=True, timeout=30)
    except OSError as err:
        pytest.skip("cannot mount a tmpfs here: %s" % err)
    if out.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % out.stderr.strip())
    request.addfinalizer(lambda: subprocess.run(["umount", "-l", path], timeout=30))


_ENOSPC = os.strerror(errno.ENOSPC)


def _inject_disk_full(monkeypatch, kind):
    """Makes the trainer's ``kind`` of write fail as a full disk does."""
    if kind in ("checkpoint", "best"):
        original = tf.compat.v1.train.Saver.save

        def save(self, sess, save_path, global_step=None, **kwargs):
            is_best = os.sep + "best" + os.sep in save_path
            if (kind == "best") == is_best and (is_best or global_step == 2):
                # What TensorFlow's SaveV2 leaves and says on a full disk.
                tmp = "%s-%d.data-00000-of-00001.tempstate7526670355417306999" % (
                    save_path, global_step)
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(b"\0" * 4096)
                raise tf.errors.ResourceExhaustedError(
                    None, None, "Graph execution error:\n\nDetected at node 'save/SaveV2'"
                    "\nNode: 'save/SaveV2'\n%s; %s\n\t [[{{node save/SaveV2}}]]"
                    % (tmp, _ENOSPC))
            return original(self, sess, save_path, global_step=global_step, **kwargs)
        monkeypatch.setattr(tf.compat.v1.train.Saver, "save", save)
    elif kind == "export":
        from vgg_patch.weights import write as weights_write

        class FullDiskPickler(weights_write.WeightsPickler):
            def dump(self, obj):
                raise OSError(errno.ENOSPC, _ENOSPC)
        monkeypatch.setattr(weights_write, "WeightsPickler", FullDiskPickler)
    else:
        original = tf.compat.v1.summary.FileWriter.add_summary
        calls = []

        def add_summary(self, summary, global_step=None):
            calls.append(global_step)
            if global_step == 2:
                raise OSError(errno.ENOSPC, _ENOSPC, self.get_logdir())
            return original(self, summary, global_step)
        monkeypatch.setattr(tf.compat.v1.summary.FileWriter, "add_summary", add_summary)


# kind -> (what the message says, where; the last good checkpoint's step)
_DISK_CASES = {"checkpoint": ("the checkpoint of step 2: {d}/model.ckpt-2", 1),
               "best": ("the best checkpoint: {d}/best/model.ckpt-2", 1),
               "export": ("the export {d}/export/vgg19-cbam.npy", 1),
               "summaries": ("the TensorBoard summaries in {d}", 1)}


# Every kind of write fails by injection; on a real (tmpfs) full disk too where
# the test may mount one, except the summaries: their events file shares the
# train dir with the checkpoints, which fill a small file system first.
@pytest.mark.parametrize("kind,variant", [(kind, "injected") for kind in sorted(_DISK_CASES)]
                         + [(kind, "tmpfs") for kind in ("best", "checkpoint", "export")])
def test_a_full_disk_gives_one_line_and_leaves_no_temp_files(kind, variant, data_dir,
                                                              tmp_path, monkeypatch,
                                                              request, capsys):
    d = str(tmp_path / "train")
    os.makedirs(d)
    expected, last_good = _DISK_CASES[kind]
    steps = {"checkpoint": 3, "best": 2, "export": 1, "summaries": 3}[kind]
    if variant == "injected":
        _inject_disk_full(monkeypatch, kind)
        # Left by a save killed in an earlier run: removed at the start.
        left = os.path.join(d, "model.ckpt-40.data-00000-of-00001.tempstate555")
        with open(left, "wb") as f:
            f.write(b"\0" * 4096)
        with open(os.path.join(d, "notes.tmp"), "w") as f:  # the user's: kept
            f.write("mine")
    else:
        # Real full file systems: sized to take the first checkpoint (346 MB at
        # 32 px with momentum) but not the second, the export (173 MB) or the
        # best checkpoint.
        where, size = {"checkpoint": (d, "500m"), "best": (d + "/best", "10m"),
                       "export": (d + "/export", "10m")}[kind]
        _mount_tmpfs(where, size, request)
    rc = train_lib.main(base_args(data_dir, d, "--max-steps", str(steps),
                                  "--checkpoint-every", "1", "--summary-every", "1",
                                  "--attention-images", "0", "-q"))
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("vgg19-cbam-train")]
    assert len(lines) == 1 and err.strip().endswith(lines[0]), err
    good = os.path.join(d, "model.ckpt-%d" % last_good) if last_good else "(none)"
    assert lines[0].startswith("vgg19-cbam-train: error: could not write "
                               + expected.format(d=d)), lines
    assert lines[0].endswith(": %s; the previous checkpoint %s is intact"
                             % (_ENOSPC, good)), lines
    assert _temp_files(d) == ([os.path.join(d, "notes.tmp")] if variant == "injected"
                              else [])
    if last_good:
        assert saved_steps(d)[-1] == last_good
        assert ckpt_value(good, "global_step") == last_good


@pytest.mark.parametrize("phase", ["validation", "export"])
def test_ctrl_c_during_validation_or_export_exits_130(phase, data_dir, tmp_path,
                                                      monkeypatch, capsys):
    # Ctrl-C as the phase starts: validation stops at its next batch and the
    # trained steps are saved; an export already being written is finished.
    d = str(tmp_path / "train")
    if phase == "validation":
        from vgg_patch import data as data_lib
        original = data_lib.ImagePipeline.initialize

        def initialize(self, sess, paths, labels):
            if self.paths.name.startswith("val_input"):
                os.kill(os.getpid(), signal.SIGINT)
            return original(self, sess, paths, labels)
        monkeypatch.setattr(data_lib.ImagePipeline, "initialize", initialize)
    else:
        original = Vgg19.save_npy

        def save_npy(self, sess, npy_path):
            os.kill(os.getpid(), signal.SIGINT)
            return original(self, sess, npy_path)
        monkeypatch.setattr(Vgg19, "save_npy", save_npy)
    rc = train_lib.main(base_args(data_dir, d, "--max-steps", "2", "-q"))
    err = capsys.readouterr().err
    assert rc == 130 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    export = os.path.join(d, "export", "vgg19-cbam.npy")
    if phase == "validation":
        assert last == ("vgg19-cbam-train: interrupted: saved checkpoint %s-2 (step 2); "
                        "run the same command again to resume"
                        % os.path.join(d, "model.ckpt")), err
        assert not os.path.exists(os.path.join(d, "best")) and not os.path.exists(export)
    else:
        assert last == ("vgg19-cbam-train: interrupted during the export, which was "
                        "completed: %s; checkpoint %s-2 (step 2)"
                        % (export, os.path.join(d, "model.ckpt"))), err
        assert os.path.exists(export)
    assert saved_steps(d) == [2] and _temp_files(d) == []
