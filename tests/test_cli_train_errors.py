"""vgg19-cbam-train on bad input, full disks and signals outside the training steps:
one line on stderr, the documented exit status, no temp file left."""
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from train_helpers import (CLASSES, base_args, ckpt_value, make_image_folder, saved_steps,
                           temp_files, wait_for)
from vgg_patch import Vgg19
from vgg_patch.cli import train as train_cli


# The runs below test writes and signals, not what is trained: only CBAM and
# fc8 train, so their checkpoints hold no momentum for the frozen layers (half
# the bytes) and their steps skip the convolutions' gradients.
FROZEN = ("--trainable-scopes", "cbam,fc8")


@pytest.fixture(scope="module")
def data_dir(module_tmp_path):
    return make_image_folder(str(module_tmp_path / "data"))


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
    rc = train_cli.main(args)
    err = capsys.readouterr().err
    assert rc == 2
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], err
    assert "Traceback" not in err


def test_sigterm_while_building_the_graph_exits_130_with_nothing_saved(data_dir, tmp_path):
    train_dir = str(tmp_path / "train")
    log = open(str(tmp_path / "log.txt"), "w+")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen([sys.executable, "-m", "vgg_patch.train"]
                            + base_args(data_dir, train_dir, "--max-steps", "5"),
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: "building the graph" in open(log.name).read(), proc, 120,
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
    assert saved_steps(train_dir) == [] and temp_files(train_dir) == []
    assert not [n for n in os.listdir(train_dir) if n.startswith(("model.ckpt", "best",
                                                                 "export"))]


def test_image_size_10000_is_refused_before_any_op(data_dir, tmp_path, capsys):
    t0 = time.time()
    rc = train_cli.main(base_args(data_dir, str(tmp_path / "t"), "--image-size", "10000"))
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
def test_a_full_disk_gives_one_line_and_leaves_notemp_files(kind, variant, data_dir,
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
        # Real full file systems: sized to take the first checkpoint (about
        # 160 MB at 32 px: the weights, and momentum for CBAM and fc8 only) but
        # not the second, the export (about 160 MB) or the best checkpoint.
        where, size = {"checkpoint": (d, "250m"), "best": (d + "/best", "10m"),
                       "export": (d + "/export", "10m")}[kind]
        _mount_tmpfs(where, size, request)
    rc = train_cli.main(base_args(data_dir, d, "--max-steps", str(steps),
                                  "--checkpoint-every", "1", "--summary-every", "1",
                                  "--attention-images", "0", "-q", *FROZEN))
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("vgg19-cbam-train")]
    assert len(lines) == 1 and err.strip().endswith(lines[0]), err
    good = os.path.join(d, "model.ckpt-%d" % last_good) if last_good else "(none)"
    assert lines[0].startswith("vgg19-cbam-train: error: could not write "
                               + expected.format(d=d)), lines
    assert lines[0].endswith(": %s; the previous checkpoint %s is intact"
                             % (_ENOSPC, good)), lines
    assert temp_files(d) == ([os.path.join(d, "notes.tmp")] if variant == "injected"
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
    rc = train_cli.main(base_args(data_dir, d, "--max-steps", "2", "-q", *FROZEN))
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
    assert saved_steps(d) == [2] and temp_files(d) == []
