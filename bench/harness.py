"""Measurement helpers for the benchmarks: timing, memory, machine facts, tables.

Nothing here imports TensorFlow at module level, so the parent process of
``bench/run.py`` stays light and every case can run in its own subprocess (clean
TensorFlow state, and a peak-memory figure that belongs to that case alone).
"""
import json
import logging
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time

_LOG = logging.getLogger(__name__)

RESULT_PREFIX = "BENCH_RESULT "
ROW_PREFIX = "BENCH_ROW "


# --------------------------------------------------------------------------- memory
def _status_kib(field):
    """Returns a ``/proc/self/status`` field (e.g. 'VmHWM') in bytes, or None."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def peak_rss_bytes():
    """Peak resident set size of this process so far, in bytes.

    Reads VmHWM from /proc/self/status; falls back to ``getrusage`` (whose
    ``ru_maxrss`` is KiB on Linux).
    """
    hwm = _status_kib("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes():
    """Current resident set size of this process, in bytes (None if unknown)."""
    return _status_kib("VmRSS")


def reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux >= 4.0); returns True on success.

    Writing "5" to /proc/self/clear_refs clears the peak RSS counter, which lets
    one process measure the peak of a later phase alone.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------- timing
def repeats(args, full, quick):
    """Timed repeats for a case: ``--repeats`` if given, else ``quick``/``full``."""
    if args.repeats:
        return args.repeats
    return quick if args.quick else full


def timed(fn):
    """Runs ``fn()`` once; returns (seconds, result)."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def interleaved(fns, warmup, repeats, cpu_out=None):
    """Times several callables side by side, alternating them round by round.

    Alternating (A, B, A, B, ... with the order rotated each round) makes the
    ratio between A and B robust to load that changes over the run, which is
    what matters on a shared machine.

    Args:
      fns: dict name -> zero-argument callable (one step each).
      warmup: untimed calls of each callable before timing.
      repeats: timed calls of each callable.

      cpu_out: optional dict; filled with name -> list of process CPU seconds
        (all threads, user + system) per call. CPU time counts the work done
        and is much less sensitive than wall time to other processes sharing
        the cores (it is inflated a little by thread pools spinning).

    Returns:
      dict name -> list of wall seconds per call.
    """
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    times = {name: [] for name in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            c0 = time.process_time()
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
            if cpu_out is not None:
                cpu_out.setdefault(name, []).append(time.process_time() - c0)
    return times


def summarize(seconds):
    """Median and min of a list of durations (seconds)."""
    return {"median_s": statistics.median(seconds), "min_s": min(seconds),
            "n": len(seconds)}


# --------------------------------------------------------------------------- machine
def machine_info():
    """Facts about this machine and software, for the results table."""
    info = {"python": platform.python_version(), "cpus": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True,
                             check=False).stdout
        for line in out.splitlines():
            key, _, val = line.partition(":")
            val = val.strip()
            if key == "Model name":
                info["cpu_model"] = val
            elif key == "Flags":
                flags = set(val.split())
                info["cpu_flags"] = " ".join(sorted(
                    f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16",
                                "avx512_vnni") if f in flags))
            elif key == "Hypervisor vendor":
                info["hypervisor"] = val
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    info["mem_total_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        info["loadavg"] = " ".join(open("/proc/loadavg", encoding="ascii")
                                   .read().split()[:3])
    except OSError:
        pass
    return info


def tf_info():
    """TensorFlow/NumPy/Keras versions and whether oneDNN is on (imports TF)."""
    import numpy as np
    import tensorflow as tf
    info = {"tensorflow": tf.__version__, "numpy": np.__version__}
    try:
        import keras
        info["keras"] = keras.__version__
    except ImportError:
        pass
    onednn = None
    try:
        from tensorflow.python.util import _pywrap_util_port
        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        pass
    env = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if env is not None:
        onednn = env not in ("0", "false", "False")
    info["onednn"] = onednn
    return info


# --------------------------------------------------------------------------- subprocess
def emit_result(result):
    """Prints one case's result as the worker's last stdout line (JSON)."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


def stop_on_sigterm():
    """Makes SIGTERM and SIGHUP raise KeyboardInterrupt in this process.

    ``kill PID`` then unwinds like Ctrl-C: :func:`run_worker` stops the case's
    whole process group (the worker and every process it started, such as the
    trainer runs of case ``defaults``) instead of leaving them running.
    """
    def _interrupt(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)


def stop_group(proc, grace_secs=10.0):
    """Sends SIGTERM to ``proc``'s process group, then SIGKILL after ``grace_secs``."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace_secs)
            return
        except subprocess.TimeoutExpired:
            continue


def emit_row(row, table="rows"):
    """Sends one measured row to the parent at once (a stdout line, JSON).

    :func:`run_worker` collects the rows as they come, so a case that fails or
    times out later still reports them; the case's final result (its own
    return value) is what the report uses when the case finishes.
    """
    sys.stdout.write(ROW_PREFIX + json.dumps({"table": table, "row": row}) + "\n")
    sys.stdout.flush()


class _Output(threading.Thread):
    """Reads one of the worker's streams line by line: its result, its rows
    (``on_row(table, row)`` for each as it arrives), and its last lines."""

    def __init__(self, stream, on_row=None):
        super().__init__(daemon=True)
        self.stream, self.on_row = stream, on_row
        self.result, self.tables, self.tail = None, {}, []

    def run(self):
        for line in self.stream:
            line = line.rstrip("\n")
            if line.startswith(RESULT_PREFIX):
                self.result = json.loads(line[len(RESULT_PREFIX):])
            elif line.startswith(ROW_PREFIX):
                got = json.loads(line[len(ROW_PREFIX):])
                self.tables.setdefault(got["table"], []).append(got["row"])
                if self.on_row is not None:
                    self.on_row(got["table"], got["row"])
            else:
                self.tail = (self.tail + [line])[-15:]


def run_worker(script, case, extra_args, timeout=None, on_row=None):
    """Runs ``python script --worker case extra_args`` and parses its result.

    The worker runs in a process group of its own; on a timeout or an
    interrupt (Ctrl-C, or SIGTERM after :func:`stop_on_sigterm`) the whole
    group is stopped before this returns or re-raises. Rows the worker sent
    with :func:`emit_row` reach ``on_row(table, row)`` as they are measured.

    Returns:
      (result dict or None, error message or None, wall seconds). A worker
      that failed or timed out after sending rows gives, as its result,
      :func:`partial_result` of those rows.
    """
    cmd = [sys.executable, script, "--worker", case] + list(extra_args)
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    out, err = _Output(proc.stdout, on_row), _Output(proc.stderr)
    out.start()
    err.start()
    error = None
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        error = "timed out after %s s" % timeout
    except BaseException:
        stop_group(proc)
        raise
    finally:
        out.join(timeout=10)
        err.join(timeout=10)
    wall = time.perf_counter() - t0
    if error is None and (proc.returncode != 0 or out.result is None):
        error = "exit %d: %s" % (proc.returncode, "\n".join(err.tail or out.tail))
    result = out.result
    if error is not None and result is None and out.tables:
        result = partial_result(out.tables)
    return result, error, wall


def partial_result(tables):
    """The result of a case that did not finish: ``{table: [rows]}`` of the
    rows it sent, marked ``partial`` (the report shows them as they are)."""
    return dict(tables, partial=True)


def partial_tables(result):
    """Markdown for :func:`partial_result`: each table with the union of its rows' keys."""
    parts = []
    for table, rows in result.items():
        if table == "partial":
            continue
        keys = []
        for row in rows:
            keys += [k for k in row if k not in keys]
        parts.append("%s, as measured before the case stopped (%d rows):\n\n%s" % (
            table, len(rows), format_table(
                [{k: json.dumps(v) if isinstance(v, (list, dict)) else v
                  for k, v in row.items()} for row in rows], [(k, k) for k in keys])))
    return "\n\n".join(parts)


# --------------------------------------------------------------------------- table
def format_table(rows, columns):
    """Formats rows (dicts) as a Markdown table with the given (key, title) columns."""
    head = "| " + " | ".join(title for _, title in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, sep]
    for row in rows:
        cells = []
        for key, _ in columns:
            val = row.get(key, "")
            if isinstance(val, float):
                val = ("%.3g" % val) if abs(val) < 100 else ("%.0f" % val)
            cells.append(str(val))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mib(nbytes):
    """Bytes -> MiB (float), or None."""
    return None if nbytes is None else nbytes / 2**20
