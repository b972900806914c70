"""``kill`` on the benchmark stops every process it started.

A case's worker can start processes of its own (case ``defaults`` runs the
trainer and the predictor as users do). SIGTERM to ``bench/run.py`` must stop
them all, not leave a 2 GB trainer running after the bench is gone.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time

BENCH = os.path.dirname(os.path.abspath(__file__))

# Stands in for a case worker: starts a long-running child, says its pid, waits.
_WORKER = textwrap.dedent("""
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(sys.argv[-1], "w") as f:
        f.write(str(child.pid))
    time.sleep(120)
""")

# Stands in for bench/run.py's parent: the same two harness calls.
_PARENT = textwrap.dedent("""
    import sys
    sys.path.insert(0, %r)
    import harness
    harness.stop_on_sigterm()
    harness.run_worker(sys.argv[1], "case", [sys.argv[2]])
""") % BENCH


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent has not reaped it yet).
    with open("/proc/%d/stat" % pid, encoding="ascii") as f:
        return f.read().split(") ")[-1][0] != "Z"


def _wait_for(predicate, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_sigterm_to_the_bench_stops_the_workers_children(tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(_WORKER)
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(worker), str(pid_file)],
                              stderr=subprocess.PIPE, text=True)
    child = None
    try:
        assert _wait_for(lambda: pid_file.exists() and pid_file.read_text(), 30)
        child = int(pid_file.read_text())
        assert _alive(child)
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=30)
        assert "KeyboardInterrupt" in parent.stderr.read()
        assert _wait_for(lambda: not _alive(child), 15), "worker's child %d survived" % child
    finally:
        for pid in (parent.pid, child):
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)
