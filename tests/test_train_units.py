"""vgg19-cbam-train's pieces: schedule, scope selection, checkpoint discovery, options,
progress bar. Fast: no network is trained here (see test_train_cli.py)."""
import errno
import io
import math
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from vgg_patch import train
from vgg_patch.progress import ProgressBar, format_duration


def _numpy_lr(step, base, total, schedule, warmup):
    if warmup and step < warmup:
        return base * (step + 1.0) / warmup
    if schedule == "constant":
        return base
    if schedule == "step":
        return base * (1.0 if step < 0.5 * total else 0.1 if step < 0.75 * total else 0.01)
    progress = min(1.0, max(0.0, (step - warmup) / max(1.0, total - warmup)))
    return 0.5 * base * (1.0 + math.cos(math.pi * progress))


@pytest.mark.parametrize("schedule,warmup", [("cosine", 0), ("cosine", 10), ("step", 0),
                                             ("step", 5), ("constant", 0)])
def test_learning_rate_schedule_matches_numpy(graph, schedule, warmup):
    step = tf.compat.v1.placeholder(tf.int64, [])
    lr = train.learning_rate_schedule(step, 0.1, 100, schedule, warmup)
    with tf.compat.v1.Session() as sess:
        for s in (0, 1, 4, 9, 10, 30, 49, 50, 74, 75, 99, 100, 120):
            np.testing.assert_allclose(sess.run(lr, {step: s}),
                                       _numpy_lr(s, 0.1, 100, schedule, warmup),
                                       rtol=1e-5, atol=1e-8, err_msg="step %d" % s)


def test_learning_rate_schedule_rejects_unknown(graph):
    with pytest.raises(ValueError, match="schedule must be 'cosine', 'step' or "
                                         "'constant', got 'linear'"):
        train.learning_rate_schedule(tf.constant(0, tf.int64), 0.1, 10, "linear", 0)


def test_select_trainable_by_prefix(graph):
    names = ["conv1_1/w", "conv5_4/w", "cbam_0/ChannelAttention/fc1/weights", "fc6/w",
             "fc8/w"]
    variables = [tf.compat.v1.get_variable(n, [1]) for n in names]
    pick = train.select_trainable(variables, ["fc", "cbam"])
    assert [v.op.name for v in pick] == names[2:]
    assert train.select_trainable(variables, []) == variables
    with pytest.raises(ValueError, match="'conv9' matches no trainable variable; scopes "
                                         "are cbam_0, conv1_1, conv5_4, fc6, fc8"):
        train.select_trainable(variables, ["conv9"])


def test_checkpoint_candidates_skip_incomplete_ones(tmp_path, caplog):
    d = tmp_path
    for step in (3, 10):
        (d / ("model.ckpt-%d.index" % step)).write_bytes(b"i")
        (d / ("model.ckpt-%d.data-00000-of-00001" % step)).write_bytes(b"d")
    (d / "model.ckpt-12.index").write_bytes(b"i")                    # no data
    (d / "model.ckpt-12.data-00000-of-00001.tempstate123").write_bytes(b"d")
    (d / "model.ckpt-11.data-00000-of-00001").write_bytes(b"d")      # no index
    (d / "model.ckpt-20.index").write_bytes(b"i")                    # 1 of 2 shards
    (d / "model.ckpt-20.data-00000-of-00002").write_bytes(b"d")
    found = train.checkpoint_candidates(str(d))
    assert found == [(10, os.path.join(str(d), "model.ckpt-10")),
                     (3, os.path.join(str(d), "model.ckpt-3"))]
    assert "ignoring incomplete checkpoint %s" % os.path.join(str(d), "model.ckpt-12") \
        in caplog.text
    assert train.checkpoint_candidates(str(d / "none")) == []


def _args(*argv):
    return train.build_parser().parse_args(list(argv))


def test_demo_and_data_defaults(tmp_path):
    demo = train.resolve_config(_args())
    assert demo.demo and demo.image_size == 48 and demo.optimizer == "adam"
    assert demo.flip is False and demo.train_dir == train.DEMO_TRAIN_DIR
    own = train.resolve_config(_args("--data-dir", str(tmp_path), "--trainable-scopes",
                                     " cbam , fc8,"))
    assert not own.demo and own.image_size == 224 and own.flip is True
    assert own.train_dir == train.DEFAULT_TRAIN_DIR
    assert own.trainable_scopes == ["cbam", "fc8"]
    assert train.resolve_config(_args("--data-dir", "x", "--no-flip")).flip is False


def test_recipe_defaults_depend_on_weights(tmp_path):
    recipe = ("optimizer", "learning_rate", "weight_decay", "warmup_epochs")
    weights = tmp_path / "vgg19.npy"
    weights.write_bytes(b"x")  # only its existence is checked here
    for argv, expected in (([], ("adam", 1e-4, 0.0, 0.0)),  # the demo: its own recipe
                           (["--data-dir", "d"], ("adam", 1e-4, 0.0, 1.0)),
                           (["--data-dir", "d", "--weights", str(weights)],
                            ("momentum", 1e-3, 5e-4, 0.0))):
        args = train.resolve_config(_args(*argv))
        assert tuple(getattr(args, k) for k in recipe) == expected, argv
    # Given flags win over either recipe.
    args = train.resolve_config(_args("--data-dir", "d", "--optimizer", "momentum",
                                      "--weight-decay", "1e-5"))
    assert (args.optimizer, args.learning_rate, args.weight_decay) == ("momentum", 1e-4,
                                                                       1e-5)
    text = train.build_parser().format_help()
    assert "from scratch Adam 1e-4" in " ".join(text.split())


@pytest.mark.parametrize("argv,message", [
    (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    (["--max-steps", "0"], "--max-steps must be >= 1, got 0"),
    (["--num-classes", "1"], "--num-classes must be >= 2, got 1"),
    (["--learning-rate", "nan"], "--learning-rate must be a positive number, got nan"),
    (["--dropout", "1"], "--dropout is the rate of dropped units, in [0, 1), got 1.0"),
    (["--val-fraction", "0"], "--val-fraction must be in (0, 1), got 0.0"),
    (["--val-dir", "v"], "--val-dir needs --data-dir"),
    (["--weights", "/nonexistent/vgg19.npy"],
     "--weights '/nonexistent/vgg19.npy': no such file"),
])
def test_bad_options_are_rejected_before_any_work(argv, message, capsys):
    assert train.main(argv) == 2
    err = capsys.readouterr().err
    assert "vgg19-cbam-train: error: " + message in err


def test_weights_must_not_be_the_runs_own_export(tmp_path, capsys):
    export = tmp_path / "run" / "export" / "vgg19-cbam.npy"
    export.parent.mkdir(parents=True)
    export.write_bytes(b"x")
    rc = train.main(["--data-dir", str(tmp_path), "--train-dir", str(tmp_path / "run"),
                     "--weights", str(export)])
    assert rc == 2 and "is this run's own export" in capsys.readouterr().err


def _folder(root, classes, per_class):
    from PIL import Image
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for i in range(per_class):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(
                os.path.join(root, c, "%d.png" % i))
    return root


def test_prepare_data_split_or_separate_val_dir(tmp_path):
    train_dir = _folder(str(tmp_path / "train"), ["a", "b"], 5)
    args = train.resolve_config(_args("--data-dir", train_dir, "--seed", "3"))
    split = train.prepare_data(args)
    assert split.class_names == ["a", "b"]
    assert (len(split.train_paths), len(split.val_paths)) == (8, 2)
    assert sorted(split.val_labels.tolist()) == [0, 1]
    val_dir = _folder(str(tmp_path / "val"), ["a", "b"], 2)
    args = train.resolve_config(_args("--data-dir", train_dir, "--val-dir", val_dir))
    sep = train.prepare_data(args)
    assert len(sep.train_paths) == 10 and len(sep.val_paths) == 4
    assert all(p.startswith(val_dir) for p in sep.val_paths)
    other = _folder(str(tmp_path / "other"), ["a", "c"], 1)
    args = train.resolve_config(_args("--data-dir", train_dir, "--val-dir", other))
    with pytest.raises(ValueError, match="--val-dir '.*other' has classes \\[a, c\\] but "
                                         "--data-dir '.*train' has \\[a, b\\]"):
        train.prepare_data(args)


def test_demo_data_is_the_digits_split_80_20(tmp_path):
    args = train.resolve_config(_args("--train-dir", str(tmp_path / "demo")))
    demo = train.prepare_data(args)
    assert demo.class_names == [str(d) for d in range(10)]
    assert (len(demo.train_paths), len(demo.val_paths)) == (1438, 359)
    assert demo.num_corrupt == 0
    assert demo.data_dir == os.path.join(str(tmp_path / "demo"), "demo-data")
    assert sorted(np.bincount(demo.val_labels).tolist())[0] >= 35  # ~20% of each digit


def test_progress_bar_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(20, prefix="epoch 1/2", stream=stream)
    for i in range(1, 21):
        bar.update(i, {"loss": 0.5, "acc": 0.25}, rate=12.34)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10  # one per tenth
    assert lines[0].startswith("epoch 1/2 |##----------------------| 2/20 loss 0.5 acc 0.25 "
                               "12.3 img/s eta ")
    assert lines[-1].startswith("epoch 1/2 |########################| 20/20 ")


def test_progress_bar_close_writes_the_last_state_of_a_cut_loop():
    stream = io.StringIO()
    bar = ProgressBar(45, prefix="epoch 1/3", stream=stream)
    for i in range(1, 4):  # e.g. --max-steps 3: never reaches a tenth
        bar.update(i, {"loss": 2.0})
    assert stream.getvalue() == ""
    bar.close()
    assert stream.getvalue().startswith("epoch 1/3 |#-----------------------| 3/45 loss 2 ")
    bar.update(45)
    assert stream.getvalue().count("\n") == 1


def test_progress_bar_redraws_in_place_on_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(3, stream=stream, tty=True, min_interval=0.0, unit="step")
    bar.update(1, rate=2.0)
    bar.update(3, rate=2.0)
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and "2.0 step/s" in text
    with pytest.raises(ValueError, match="total must be a positive int, got 0"):
        ProgressBar(0)


def test_format_duration():
    assert format_duration(5) == "0:05"
    assert format_duration(125) == "2:05"
    assert format_duration(3725) == "1:02:05"


def test_package_import_does_not_load_tensorflow():
    # `vgg19-cbam-train --help` must not pay for a TensorFlow import.
    import subprocess
    import sys
    code = ('import sys, vgg_patch, vgg_patch.train, vgg_patch.weights; '
            'print("tensorflow" in sys.modules)')
    # Without the suite's v1-behaviour hook, which imports TensorFlow itself.
    env = dict(os.environ, TEST_TF_BEHAVIOR="v2")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == 'False'


def test_tensorboard_command_works_from_the_users_shell(monkeypatch, tmp_path):
    """The trainer's last line names a TensorBoard the user's shell can start:
    plain ``tensorboard`` on PATH, else the one beside this Python (run.py's
    .venv, not activated)."""
    bin_dir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", bin_dir)
    assert train.tensorboard_command() == "tensorboard"
    monkeypatch.setenv("PATH", str(tmp_path))
    assert train.tensorboard_command() == os.path.join(bin_dir, "tensorboard")


def test_estimate_counts_vgg19_parameters_and_grows_with_size(graph):
    # VGG19 at 224 px with 1000 classes holds 143,667,240 parameters; CBAM adds
    # its MLP (512 -> 256 -> 512), the 7x7x2 spatial kernel and BN beta/gamma.
    cbam = 512 * 256 + 256 + 256 * 512 + 512 + 7 * 7 * 2 + 2
    params, _ = train.estimate_memory(224, 1, 1000, "momentum")
    assert params == 143667240 + cbam
    # Against the real graph: every variable the network builds at 32 px, less
    # the batch norm's moving statistics (not trained, no slots).
    from vgg_patch import Vgg19
    images = tf.compat.v1.placeholder(tf.float32, [1, 32, 32, 3])
    Vgg19(None, num_classes=3).build(images, tf.constant(False))
    built = sum(int(np.prod(v.shape.as_list())) for v in tf.compat.v1.trainable_variables())
    assert train.estimate_memory(32, 1, 3, "adam")[0] == built
    # fc6's input is 512 * ceil(s / 32) ** 2; bytes: weights, gradients, slots
    # and activations, so Adam and bigger batches need more.
    p1000 = train.estimate_memory(1000, 1, 3, "adam")[0]
    assert p1000 - params > 512 * (32 ** 2 - 7 ** 2) * 4096 - 1000 * 4097
    small, adam = (train.estimate_memory(64, b, 3, o)[1] for b, o in
                   ((1, "momentum"), (1, "adam")))
    assert adam - small == 4 * train.estimate_memory(64, 1, 3, "adam")[0]
    assert train.estimate_memory(64, 8, 3, "adam")[1] > adam


def test_sizes_are_checked_against_memory_and_bounds(monkeypatch):
    args = train.resolve_config(_args("--data-dir", "d", "--image-size", "32",
                                      "--batch-size", "4"))
    train.check_model_fits(args, 3)  # fits: no error
    monkeypatch.setattr(train, "_available_memory", lambda: (10 ** 8, "MemAvailable"))
    with pytest.raises(train.UsageError, match=r"--image-size 32 with --batch-size 4 "
                       r"needs about 0\.\d GB .* but only 0\.1 GB is available "
                       r"\(MemAvailable\)"):
        train.check_model_fits(args, 3)
    monkeypatch.setattr(train, "_available_memory", lambda: (None, None))
    args.image_size = train.MAX_IMAGE_SIZE + 1
    with pytest.raises(train.UsageError, match="the limits are --image-size 4096"):
        train.check_model_fits(args, 3)


def test_available_memory_honours_an_address_space_cap():
    # In a child process, so the cap never touches the test process.
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30));"
            "from vgg_patch import train; n, src = train._available_memory();"
            "print(n <= 8 << 30, src)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "True the address-space limit (RLIMIT_AS)", out


def test_remove_temp_files_only_removes_the_trainers_temp_files(tmp_path):
    d = tmp_path / "run"
    (d / "best").mkdir(parents=True)
    (d / "export").mkdir()
    temp = [d / "model.ckpt-6.data-00000-of-00001.tempstate7526670355417306999",
            d / "model.ckpt-6.index.tempstate12",
            d / "checkpoint.tmp3f2a9c",
            d / "best" / "model.ckpt-5.data-00000-of-00001.tempstate99",
            d / "export" / ".vgg19-cbam.npy.k2j3_x.tmp",
            d / "run.json.tmp"]
    kept = [d / "model.ckpt-6.data-00000-of-00001", d / "model.ckpt-6.index",
            d / "notes.tmp", d / "my.tempstate1", d / "checkpoint",
            d / "data.tempstate12", d / "export" / "vgg19-cbam.npy"]
    for path in temp + kept:
        path.write_bytes(b"x")
    removed = train.remove_temp_files(str(d))
    assert sorted(removed) == sorted(str(p) for p in temp)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in temp)
    assert train.remove_temp_files(str(tmp_path / "nowhere")) == []


def test_write_failures_name_the_file_and_the_os_reason():
    tf_error = tf.errors.ResourceExhaustedError(
        None, None, "Graph execution error:\n\nDetected at node 'save/SaveV2'\n"
        "Node: 'save/SaveV2'\n/r/model.ckpt-3.data-00000-of-00001.tempstate75266; No "
        "space left on device\n\t [[{{node save/SaveV2}}]]\nHint: ...")
    err = train.write_failed("the checkpoint of step 3:", "/r/model.ckpt-3", tf_error,
                             "/r/model.ckpt-2")
    assert str(err) == ("could not write the checkpoint of step 3: "
                        "/r/model.ckpt-3.data-00000-of-00001: No space left on device; "
                        "the previous checkpoint /r/model.ckpt-2 is intact")
    os_error = OSError(errno.EIO, os.strerror(errno.EIO))
    err = train.write_failed("the export", "/r/export/vgg19-cbam.npy", os_error, None)
    assert str(err) == ("could not write the export /r/export/vgg19-cbam.npy: "
                        "Input/output error; the previous checkpoint (none) is intact")
    vague = tf.errors.UnknownError(None, None, "Graph execution error:\n\nsomething "
                                   "failed: No space left on device")
    assert "No space left on device" in str(train.write_failed("x", "p", vague, None))


def test_second_signal_says_what_happened(capsys, monkeypatch):
    def interrupted_twice(args, stop):
        stop._handler(signal.SIGTERM, None)
        stop._handler(signal.SIGINT, None)

    monkeypatch.setattr(train, "train", interrupted_twice)
    assert train.main(["--data-dir", "d", "--train-dir", "t"]) == 130
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == ("vgg19-cbam-train: second SIGINT: stopped at once, without "
                         "saving; the newest complete checkpoint is intact and the next "
                         "run resumes from it")
