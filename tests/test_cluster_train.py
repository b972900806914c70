"""The trainer on a worker-only cluster (TF_CONFIG), on 127.0.0.1 with free ports.

Most runs use tests/cluster_train_task.py: the trainer's command with a tiny
network behind its seam (no dropout; batch norm, synchronised, in the
weights test), so N workers must give one process's weights; each task trains into its own ``<train-dir>/<task>``
so the tests see who wrote what. Every process is checked gone by pid.
"""
import json
import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
from PIL import Image

from vgg_patch import cluster
from vgg_patch.cli.common import UsageError
from vgg_patch.cluster import Task
from vgg_patch.training import workers as workers_lib

import train_helpers

HERE = os.path.dirname(os.path.abspath(__file__))
TASK = os.path.join(HERE, "cluster_train_task.py")


def flat_image_folder(root, counts=(9, 7, 7)):
    """Classes of flat-coloured images: any crop or flip of one is itself, so
    the random augmentation cannot make runs differ."""
    rng = np.random.RandomState(0)
    for label, count in enumerate(counts):
        os.makedirs(os.path.join(root, "c%d" % label))
        for i in range(count):
            colour = np.clip(np.eye(3)[label] * 0.6 + rng.uniform(0, 0.4, 3), 0, 1)
            Image.fromarray((np.ones((36, 36, 3)) * colour * 255).astype(np.uint8)).save(
                os.path.join(root, "c%d" % label, "%d.png" % i))
    return root


def tiny_args(data_dir, train_dir, *extra):
    return ["--data-dir", data_dir, "--train-dir", train_dir, "--image-size", "16",
            "--batch-size", "4", "--optimizer", "momentum", "--learning-rate", "0.1",
            "--warmup-epochs", "0", "--attention-images", "0", "--seed", "3"] + list(extra)


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Tasks:
    """Starts cluster tasks as separate processes (own process groups); stops and
    checks by pid that none outlives the test."""

    def __init__(self, tmp_path):
        self.tmp, self.procs, self.pids = tmp_path, {}, []

    def start(self, cluster_dict, task, args, env=None, name=None):
        environ = dict(os.environ, **(env or {}))
        if cluster_dict is not None:
            environ["TF_CONFIG"] = cluster.tf_config(cluster_dict, task)
        else:
            environ.pop("TF_CONFIG", None)
        name = name or ("%s%d" % (task.job, task.index) if task else "single")
        log = open(self.tmp / ("%s-%d.log" % (name, len(self.pids))), "w+")
        proc = subprocess.Popen([sys.executable, TASK] + args, env=environ, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        proc.log = log
        self.procs[name], _ = proc, self.pids.append(proc.pid)
        return proc

    def wait(self, proc, timeout=240):
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError("timed out: %s" % output(proc))
        return proc.returncode

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in self.pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in self.pids if _alive(p)]


def output(proc):
    proc.log.seek(0)
    return proc.log.read()


@pytest.fixture
def tasks(tmp_path):
    started = Tasks(tmp_path)
    yield started
    started.stop()


def _two_workers():
    spec = cluster.make_cluster(2)
    return spec, [Task("worker", 0), Task("worker", 1)]


def _variables(train_dir):
    prefix = os.path.join(train_dir, "model.ckpt-%d" % train_helpers.newest_step(train_dir))
    reader = train_helpers.tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if not name.startswith("train_state/best")}


def test_two_workers_give_one_process_weights_and_only_the_chief_writes(tmp_path, tasks):
    data = flat_image_folder(str(tmp_path / "data"))
    runs = str(tmp_path / "runs")
    # 19 training images, global batch 4: 4 full batches (2 + 2) and a last
    # one of 3 (2 + 1): the gradient is the global batch's mean either way.
    # With batch norm (slim's and CBAM's spatial one): synchronised, the
    # global batch's statistics, so the weights and moving averages match too.
    args = tiny_args(data, runs, "--epochs", "1", "--no-flip", "--quiet")
    spec, (w0, w1) = _two_workers()
    env = {"CLUSTER_TEST_BATCH_NORM": "1"}
    procs = [tasks.start(None, None, args, env), tasks.start(spec, w0, args, env),
             tasks.start(spec, w1, args, env)]
    for proc in procs:
        assert tasks.wait(proc) == 0, output(proc)
    single, chief = _variables(os.path.join(runs, "single")), _variables(
        os.path.join(runs, "worker0"))
    assert train_helpers.saved_steps(os.path.join(runs, "worker0")) == [5]
    assert sorted(single) == sorted(chief)
    assert {"tiny/BatchNorm/moving_variance",
            "tiny/SpatialAttention/BatchNorm/moving_mean"} <= set(single)
    diffs = {name: float(np.abs(chief[name] - value).max()) for name, value in single.items()}
    print("max abs differences, 2 workers against 1 process:", diffs)
    for name, value in single.items():
        # Round-off is judged against each variable's own scale: batch norm's
        # gradient is a difference of near-equal sums (it removes the batch
        # mean), so an element near zero carries the error of the array's
        # largest ones. Measured: at most 1.4e-5 of the scale (conv/Momentum,
        # TF1 mode); without synchronised statistics the weights differ by 0.36.
        scale = max(float(np.abs(value).max()), 1e-3)
        assert diffs[name] <= 1e-4 * scale, (name, diffs[name], scale)
    assert not np.allclose(single["tiny/conv"], 0)
    assert not np.allclose(single["tiny/SpatialAttention/BatchNorm/moving_variance"], 1)
    assert not os.path.exists(os.path.join(runs, "worker1"))  # wrote nothing at all
    assert os.path.exists(os.path.join(runs, "worker0", "export", "tiny.npz"))
    assert "writes nothing" in output(procs[2])


def test_a_missing_peer_stops_the_worker_with_its_name(tmp_path, tasks):
    data = flat_image_folder(str(tmp_path / "data"))
    spec, (w0, _) = _two_workers()
    t0 = time.monotonic()
    proc = tasks.start(spec, w0, tiny_args(data, str(tmp_path / "runs"),
                                           "--peer-timeout", "2", "--quiet"))
    assert tasks.wait(proc, 120) == 1
    text = output(proc)
    assert ("vgg19-cbam-train: error: worker 1 (%s) unreachable for 2 s (--peer-timeout)"
            % spec["worker"][1]) in text, text
    assert "Traceback" not in text
    assert time.monotonic() - t0 < 60


def test_workers_that_see_different_images_refuse_to_train(tmp_path, tasks):
    spec, (w0, w1) = _two_workers()
    other = flat_image_folder(str(tmp_path / "other"), counts=(9, 7, 8))
    procs = [tasks.start(spec, w0, tiny_args(flat_image_folder(str(tmp_path / "data")),
                                             str(tmp_path / "runs"), "--quiet")),
             tasks.start(spec, w1, tiny_args(other, str(tmp_path / "runs"), "--quiet"))]
    for proc in procs:
        assert tasks.wait(proc, 120) == 2, output(proc)
        assert "the workers see different images" in output(proc)


def _workers(monkeypatch, spec, task, batch_size=4):
    monkeypatch.setenv("TF_CONFIG", cluster.tf_config(spec, task))
    return workers_lib.from_environment(
        types.SimpleNamespace(batch_size=batch_size, peer_timeout=5.0))


def test_tf_config_tasks_chief_first_and_refusals(monkeypatch):
    spec = cluster.make_cluster(2, chief=True, ports=[5001, 5002, 5003])
    workers = _workers(monkeypatch, spec, Task("worker", 1), 6)
    assert (workers.rank, workers.size, workers.is_chief) == (2, 3, False)
    assert workers.name(0) == "chief 0 (127.0.0.1:5001)"
    assert workers.device == "/job:worker/replica:0/task:1"
    assert _workers(monkeypatch, spec, Task("chief", 0), 6).is_chief
    monkeypatch.delenv("TF_CONFIG")
    assert workers_lib.from_environment(types.SimpleNamespace(batch_size=5)) is None
    with pytest.raises(UsageError, match="--batch-size 4 is the global batch and must be "
                                         "divisible by the 3 training tasks"):
        _workers(monkeypatch, spec, Task("worker", 0))
    with pytest.raises(UsageError, match="TF_CONFIG has a 'ps' job"):
        _workers(monkeypatch, cluster.make_cluster(1, ps=1), Task("worker", 0))
    with pytest.raises(UsageError, match="TF_CONFIG: task index is 3"):
        _workers(monkeypatch, cluster.make_cluster(2), Task("worker", 3))


def test_each_worker_takes_its_rows_of_every_global_batch(monkeypatch):
    spec = cluster.make_cluster(2, ports=[5001, 5002])
    order = np.arange(100, 111)  # global batches of 4: 4 + 4 + a last one of 3
    shards = [_workers(monkeypatch, spec, Task("worker", i)).shard(order, 4)
              for i in range(2)]
    np.testing.assert_array_equal(shards[0], [100, 101, 104, 105, 108, 109])
    np.testing.assert_array_equal(shards[1], [102, 103, 106, 107, 110])
    three = _workers(monkeypatch, cluster.make_cluster(3, ports=[1, 2, 3]),
                     Task("worker", 2), 6)
    # a last batch of 2 < 3 workers is left out, and the epoch counts one step less
    np.testing.assert_array_equal(three.shard(np.arange(14), 6), [4, 5, 10, 11])
    assert workers_lib.steps_per_epoch(14, 6, three) == 2
    assert workers_lib.steps_per_epoch(14, 6, None) == 3


def _wait_for_step(train_dir, step, procs, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isdir(train_dir) and any(
                s >= step for s in train_helpers.saved_steps(train_dir)):
            return
        for proc in procs:
            assert proc.poll() is None, output(proc)
        time.sleep(0.2)
    raise AssertionError("no checkpoint of step %d in %s" % (step, train_dir))


def test_a_killed_worker_and_a_killed_chief_rejoin_and_the_run_ends(tmp_path, tasks):
    data = flat_image_folder(str(tmp_path / "data"))
    runs = str(tmp_path / "runs")
    chief_dir = os.path.join(runs, "worker0")
    args = tiny_args(data, runs, "--epochs", "100", "--max-steps", "40",
                     "--checkpoint-every", "3", "--peer-timeout", "6")
    env = {"CLUSTER_TEST_STEP_SECS": "0.05"}
    spec, (w0, w1) = _two_workers()
    chief, worker = tasks.start(spec, w0, args, env), tasks.start(spec, w1, args, env)
    chief_pid = chief.pid

    # 1. worker 1 is killed and started again: the chief saves the step it
    #    reached, restarts itself (same pid), and both resume at that step.
    _wait_for_step(chief_dir, 3, [chief, worker])
    worker.kill()
    _wait_for(lambda: "restarting this process" in output(chief), chief)
    text = output(chief)
    assert "worker 1 (%s) unreachable after step" % spec["worker"][1] in text, text
    saved = train_helpers.newest_step(chief_dir)
    assert "saved %s" % os.path.join(chief_dir, "model.ckpt-%d" % saved) in text
    worker = tasks.start(spec, w1, args, env, name="worker1-again")
    _wait_for(lambda: "resuming from" in output(chief), chief)
    assert "step %d," % saved in output(chief).split("resuming from")[1], output(chief)

    # 2. the chief is killed and started again: worker 1 restarts itself,
    #    the chief resumes from its last checkpoint, the run ends at
    #    --max-steps and every process exits 0.
    _wait_for_step(chief_dir, saved + 3, [chief, worker])
    chief.kill()
    chief.wait()
    last = train_helpers.newest_step(chief_dir)
    chief = tasks.start(spec, w0, args, env, name="worker0-again")
    assert tasks.wait(chief) == 0, output(chief)
    assert tasks.wait(worker) == 0, output(worker)
    assert "worker 0 (%s) unreachable after step" % spec["worker"][0] in output(worker)
    assert "Traceback" not in output(worker) + output(chief)
    assert "resuming from" in output(chief)
    assert "step %d," % last in output(chief).split("resuming from")[1]
    assert train_helpers.newest_step(chief_dir) == 40
    assert chief_pid != chief.pid and not os.path.exists(os.path.join(runs, "worker1"))


def test_ctrl_c_on_one_worker_stops_every_worker_after_the_same_step(tmp_path, tasks):
    data = flat_image_folder(str(tmp_path / "data"))
    runs = str(tmp_path / "runs")
    args = tiny_args(data, runs, "--epochs", "100", "--checkpoint-every", "2")
    spec, (w0, w1) = _two_workers()
    env = {"CLUSTER_TEST_STEP_SECS": "0.05"}
    chief, worker = tasks.start(spec, w0, args, env), tasks.start(spec, w1, args, env)
    _wait_for_step(os.path.join(runs, "worker0"), 2, [chief, worker])
    worker.send_signal(signal.SIGINT)  # the non-chief: it saves nothing itself
    assert tasks.wait(chief, 120) == 130, output(chief)
    assert tasks.wait(worker, 120) == 130, output(worker)
    step = train_helpers.newest_step(os.path.join(runs, "worker0"))
    assert "interrupted: saved checkpoint %s (step %d)" % (
        os.path.join(runs, "worker0", "model.ckpt-%d" % step), step) in output(chief)
    assert "saved checkpoint (the chief's) (step %d)" % step in output(worker)
    assert not os.path.exists(os.path.join(runs, "worker1"))


def _wait_for(predicate, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, output(proc)
        assert time.monotonic() < deadline, output(proc)
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.tf_behavior("v2", reason="about 100 s a pass; the tiny-network runs above "
                                      "take every cluster path of the trainer in both "
                                      "behaviours, this one adds VGG19+CBAM only")
def test_vgg19_cbam_train_on_two_workers(tmp_path, tasks):
    """The real command (VGG19+CBAM at 32 px) through the launcher."""
    data = train_helpers.make_image_folder(str(tmp_path / "data"), corrupt=False)
    train_dir = str(tmp_path / "run")
    result = cluster.run_cluster(
        [sys.executable, "-m", "vgg_patch.train"] + train_helpers.base_args(data, train_dir, "--max-steps", "2",
                                                        "--quiet"),
        workers=2, timeout=600, output=open(tmp_path / "out.log", "w"))
    assert result.returncode == 0, (tmp_path / "out.log").read_text()
    assert train_helpers.saved_steps(train_dir) == [2]
    assert os.path.exists(os.path.join(train_dir, "export", "vgg19-cbam.npy"))
    assert json.load(open(os.path.join(train_dir, "run.json")))
