"""vgg_patch.training.scratch: a non-chief worker's temp folder does not outlive it.

The workers here are small Python processes (no TensorFlow) with ``TMPDIR``
set to the test's folder; each prints its folder, then exits, restarts
itself with ``workers.restart_process`` (``os.execve``), or waits for a
signal. Every process is stopped by pid.
"""
import os
import signal
import subprocess
import sys

import pytest

from vgg_patch.training import scratch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r"""
import os, sys, time
from vgg_patch.training import signals, workers
mode = sys.argv[1]
if mode == 'trainer':  # scratch_dir inside the trainer's StopRequest, as in train()
    with signals.StopRequest() as stop:
        print(workers.scratch_dir(), flush=True)
        while not stop.requested:
            time.sleep(0.02)
    sys.exit(130)
print(workers.scratch_dir(), flush=True)
if mode == 'restart' and not os.environ.get('RESTARTED'):
    os.environ['RESTARTED'] = '1'
    workers.restart_process(False)  # does not return
if mode == 'wait':
    time.sleep(60)
"""


def _start(tmp_path, mode):
    env = dict(os.environ, TMPDIR=str(tmp_path))
    env.pop('TEST_TF_BEHAVIOR', None)  # no TensorFlow in these processes
    env['PYTHONPATH'] = REPO
    return subprocess.Popen([sys.executable, '-c', WORKER, mode], env=env, text=True,
                            stdout=subprocess.PIPE, start_new_session=True)


def _folder(proc):
    path = proc.stdout.readline().strip()
    assert os.path.basename(path).startswith(scratch.PREFIX), path
    return path


def _wait(proc):
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _left(tmp_path):
    return sorted(n for n in os.listdir(tmp_path) if n.startswith('vgg19-cbam-worker-'))


def test_removed_at_exit_and_before_the_process_restarts_itself(tmp_path):
    proc = _start(tmp_path, 'restart')
    before, after = _folder(proc), _folder(proc)  # one per run of the same pid
    assert _wait(proc) == 0 and before != after
    assert _left(tmp_path) == []


@pytest.mark.parametrize('mode, status', [('wait', -signal.SIGTERM), ('trainer', 130)])
def test_removed_on_sigterm(tmp_path, mode, status):
    """Without a handler the folder goes, then SIGTERM kills the process as
    before; under the trainer's StopRequest the stop exits normally."""
    proc = _start(tmp_path, mode)
    assert os.path.isdir(_folder(proc))
    proc.send_signal(signal.SIGTERM)
    assert _wait(proc) == status
    assert _left(tmp_path) == []


def test_killed_workers_folders_go_live_ones_stay(tmp_path, monkeypatch):
    killed, live = _start(tmp_path, 'wait'), _start(tmp_path, 'wait')
    killed_dir, live_dir = _folder(killed), _folder(live)
    assert os.path.isdir(killed_dir) and os.path.isdir(live_dir)
    older = tmp_path / 'vgg19-cbam-worker-ab12cd34'  # an older version's: no lock, kept
    older.mkdir()
    try:
        assert scratch.remove_stale(str(tmp_path)) == []  # both locked by their owners
        killed.send_signal(signal.SIGKILL)
        assert _wait(killed) == -signal.SIGKILL
        assert scratch.remove_stale(str(tmp_path)) == []  # too young to be taken for dead
        monkeypatch.setattr(scratch, 'STALE_AFTER_SECS', 0.0)
        assert scratch.remove_stale(str(tmp_path)) == [killed_dir]
        assert os.path.isdir(live_dir) and older.is_dir()
    finally:
        live.send_signal(signal.SIGTERM)
        assert _wait(live) == -signal.SIGTERM
    assert _left(tmp_path) == [older.name]
