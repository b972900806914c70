"""vgg19-cbam-train's command line: options, messages, signals, a fast --help.
Fast: no network is trained here (see test_cli_train_story.py)."""
import os
import signal
import subprocess
import sys

import pytest

from vgg_patch.cli import train as train_cli


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
    assert train_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "vgg19-cbam-train: error: " + message in err


def test_weights_must_not_be_the_runs_own_export(tmp_path, capsys):
    export = tmp_path / "run" / "export" / "vgg19-cbam.npy"
    export.parent.mkdir(parents=True)
    export.write_bytes(b"x")
    rc = train_cli.main(["--data-dir", str(tmp_path), "--train-dir",
                         str(tmp_path / "run"), "--weights", str(export)])
    assert rc == 2 and "is this run's own export" in capsys.readouterr().err


def _without_tensorflow(code):
    """Runs ``code`` in a fresh Python; returns its stdout. Without the suite's
    v1-behaviour hook, which imports TensorFlow itself."""
    env = dict(os.environ, TEST_TF_BEHAVIOR="v2")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    return out.stdout


def test_package_import_does_not_load_tensorflow():
    # `vgg19-cbam-train --help` must not pay for a TensorFlow import.
    code = ('import sys, vgg_patch, vgg_patch.train, vgg_patch.predict, vgg_patch.weights, '
            'vgg_patch.cli.train, vgg_patch.cli.predict, vgg_patch.training.run, '
            'vgg_patch.data; print("tensorflow" in sys.modules)')
    assert _without_tensorflow(code).strip() == "False"


@pytest.mark.parametrize("module", ["vgg_patch.cli.train", "vgg_patch.train",
                                    "vgg_patch.cli.predict", "vgg_patch.predict"])
def test_help_does_not_import_tensorflow(module):
    # What the console scripts and `python -m vgg_patch.train --help` run.
    code = ("import runpy, sys\n"
            "sys.argv = ['prog', '--help']\n"
            "try:\n"
            "    runpy.run_module(%r, run_name='__main__')\n"
            "except SystemExit as exit:\n"
            "    assert exit.code == 0, exit.code\n"
            "print('TF', 'tensorflow' in sys.modules)\n" % module)
    out = _without_tensorflow(code)
    assert "usage: vgg19-cbam-" in out and out.strip().endswith("TF False"), out


def test_old_entry_points_and_names_still_work():
    from vgg_patch import predict, train
    from vgg_patch.cli import predict as predict_cli
    assert train.main is train_cli.main and predict.main is predict_cli.main
    for name in ("build_parser", "resolve_config", "build_graph", "run_step", "train",
                 "prepare_data", "checkpoint_candidates", "attention_summary",
                 "UsageError", "EXIT_USAGE", "DEFAULT_TRAIN_DIR", "EXPORT_NAME"):
        assert hasattr(train, name), name
    assert predict.UsageError is train.UsageError
    setup_py = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "setup.py")
    with open(setup_py, encoding="utf-8") as f:
        text = f.read()
    assert '"vgg19-cbam-train=vgg_patch.cli.train:main"' in text
    assert '"vgg19-cbam-predict=vgg_patch.cli.predict:main"' in text


def test_tensorboard_command_works_from_the_users_shell(monkeypatch, tmp_path):
    """The trainer's last line names a TensorBoard the user's shell can start:
    plain ``tensorboard`` on PATH, else the one beside this Python (run.py's
    .venv, not activated)."""
    bin_dir = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", bin_dir)
    assert train_cli.tensorboard_command() == "tensorboard"
    monkeypatch.setenv("PATH", str(tmp_path))
    assert train_cli.tensorboard_command() == os.path.join(bin_dir, "tensorboard")


def test_second_signal_says_what_happened(capsys, monkeypatch):
    def interrupted_twice(args, stop, make_network=None):
        stop.handle(signal.SIGTERM, None)
        stop.handle(signal.SIGINT, None)

    monkeypatch.setattr(train_cli, "train", interrupted_twice)
    assert train_cli.main(["--data-dir", "d", "--train-dir", "t"]) == 130
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == ("vgg19-cbam-train: second SIGINT: stopped at once, without "
                         "saving; the newest complete checkpoint is intact and the next "
                         "run resumes from it")
