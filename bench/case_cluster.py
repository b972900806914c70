"""Case ``cluster``: one process against 2 workers on this machine (issue 16).

VGG19 + CBAM (``vgg_patch.Vgg19`` with a synthetic weights file from
``vgg_patch.layout``'s writer, sized for ``SIZE`` px images and ``CLASSES``
classes) trains with plain SGD on a fixed random batch, side by side:

- **1 process**: a local ``Session``, intra/inter-op threads 2, the whole
  global batch;
- **2 workers, no exchange**: the two worker processes below, each on its share
  of the batch with its own variables, gradients applied unreduced: the
  workers' compute alone, under the same load (the reference for the
  communication time);
- **2 workers, collective all-reduce**: the same processes and variables, the
  gradients averaged by the trainer's packed all-reduce
  (``vgg_patch.training.replicas``: one ``CollectiveReduceV2`` per dtype) in a
  plain graph and ``tf.compat.v1.Session`` on a ``tf.distribute.Server``
  (``experimental.collective_group_leader`` in both configs): worker-only
  data parallelism; **per tensor**: the same module's all-reduce called
  once per gradient, so each goes out as backpropagation produces it; and **in
  25 MiB packs** filled in backpropagation's order (cluster_task.BUCKET_BYTES);
- **1 ps + 2 workers, SyncReplicasOptimizer**: ``replica_device_setter``
  (variables on the ps), ``SyncReplicasOptimizer`` in a
  ``MonitoredTrainingSession`` (slim_attention's repairs applied).

Workers and the ps run 1 intra- and 1 inter-op thread each. Every process is
started once by this case (bench/cluster_task.py, free ports on 127.0.0.1,
``TF_CONFIG`` per task), with bounded waits, and stopped by pid at the end.
Rounds rotate the contestants' order; each round runs every contestant for
``STEPS`` steps and reads the loopback counters (``/proc/net/dev`` ``lo``)
and our cluster's own TCP sockets (``ss -tin``, by port) before and after.
Communication time per step = the contestant's step time minus the "no
exchange" step time of the same round. The gradient bytes come from the
graph's trainable variables (4 bytes each); the 224 px figures and the
projection are :mod:`cluster_projection`'s.
"""
import json
import logging
import os
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import harness
import cluster_projection as projection

_LOG = logging.getLogger("bench")

#: Image size (px), global batch, classes, steps per round; and for --quick.
SIZE, BATCH, CLASSES, STEPS = 32, 16, 10, 4
QUICK_SIZE, QUICK_BATCH, QUICK_STEPS = 32, 4, 1
#: Seconds a task may take to start and initialise; a round of one contestant.
START_TIMEOUT, RUN_TIMEOUT = 900, 600
#: Our sockets count as quiet after this many seconds without a byte; the wait's cap.
QUIET_SECS, QUIET_LIMIT_SECS = 0.5, 15
_HERE = os.path.dirname(os.path.abspath(__file__))

#: Per-process batch of the 224 px compute measurement (full run only).
BATCH_224 = 4
#: (name, processes, mode, threads per process, steps per round or None: STEPS).
CONTESTANTS = (
    ("1 process", ("single",), "local", 2, None),
    ("2 workers, no exchange (compute only)", ("worker 0", "worker 1"), "local", 1, None),
    ("2 workers, collective all-reduce", ("worker 0", "worker 1"), "allreduce", 1, None),
    ("2 workers, collective all-reduce per tensor", ("worker 0", "worker 1"),
     "allreduce_each", 1, None),
    ("2 workers, collective all-reduce in 25 MiB packs", ("worker 0", "worker 1"),
     "allreduce_buckets", 1, None),
    ("1 ps + 2 workers, SyncReplicasOptimizer", ("worker 0", "worker 1"), "ps", 1, None),
)
#: The compute per image the projection starts from: 224 px, the whole machine.
COMPUTE_224 = ("1 process, 224 px (compute for the projection)", ("single",), "local224",
               2, 1)
REFERENCE = CONTESTANTS[1][0]


class Task:
    """One started process speaking bench/cluster_task.py's line protocol."""

    def __init__(self, name, spec, env, log_dir):
        self.name = name
        self.log_path = os.path.join(log_dir, name.replace(" ", "_") + ".log")
        self._log = open(self.log_path, "wb")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, os.path.join(_HERE, "cluster_task.py"), json.dumps(spec)],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            start_new_session=True, text=True)
        self._lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith("CLUSTER_TASK "):
                self._lines.put(json.loads(line[len("CLUSTER_TASK "):]))
        self._lines.put(None)

    def send(self, obj):
        """One command line to the task."""
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout):
        """The task's next reply; RuntimeError (with its log's tail) if it
        exits or says nothing for ``timeout`` seconds."""
        try:
            got = self._lines.get(timeout=timeout)
        except queue.Empty:
            got = None
        if got is None:
            self._log.flush()
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                lines = f.readlines()
            errors = [l for l in lines if "Error" in l and not l.startswith(" ")]
            tail = "".join(errors[-3:] + lines[-12:])
            status = self.proc.poll()
            raise RuntimeError("%s (pid %d) %s:\n%s" % (
                self.name, self.proc.pid, "gave no answer within %d s" % timeout
                if status is None else "exited with status %d" % status, tail))
        return got

    def close(self):
        self._log.close()


def lo_bytes():
    """Bytes sent over the loopback interface so far (``/proc/net/dev``, ``lo``
    transmit; each byte on ``lo`` is also received once)."""
    with open("/proc/net/dev", encoding="ascii") as f:
        for line in f:
            name, _, fields = line.partition(":")
            if name.strip() == "lo":
                return int(fields.split()[8])
    return None


_SS_BYTES = re.compile(r"bytes_received:(\d+)")


def socket_bytes(ports):
    """Payload bytes received so far on the TCP sockets with a local or peer
    port in ``ports`` (``ss -tin``): every byte between our tasks counted once,
    other traffic on ``lo`` left out. None if ``ss`` is not there."""
    try:
        out = subprocess.run(["ss", "-tinH", "state", "established"], capture_output=True,
                             text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    total, counted = 0, False
    ports = {str(p) for p in ports}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and not line[:1].isspace():  # a socket: its addresses
            ends = {fields[2].rsplit(":", 1)[1], fields[3].rsplit(":", 1)[1]}
            counted = bool(ends & ports)
            continue
        match = _SS_BYTES.search(line)
        if match and counted:
            total += int(match.group(1))
            counted = False
    return total


def wait_quiet(ports, secs=QUIET_SECS, limit=QUIET_LIMIT_SECS):
    """Our sockets' byte count once it has not changed for ``secs`` (at most
    ``limit`` seconds): a ps run's last transfers land after its steps have
    returned, and belong to it."""
    deadline = time.monotonic() + limit
    last = socket_bytes(ports)
    while time.monotonic() < deadline:
        time.sleep(secs)
        now = socket_bytes(ports)
        if now == last:
            break
        last = now
    return last


def model_file(size, classes):
    """The synthetic weights file for ``size`` px and ``classes`` (written once
    under $BENCH_CACHE)."""
    from vgg_patch import layout  # pylint: disable=import-outside-toplevel
    root = os.environ.get("BENCH_CACHE", "/tmp/slim_attention_bench")
    path = os.path.join(root, "vgg19_cluster_%dpx_%dclasses.npy" % (size, classes))
    if not os.path.exists(path):
        os.makedirs(root, exist_ok=True)
        height, width = layout.pool5_size(size, size)
        shapes = layout.layer_shapes(height * width * layout.POOL5_CHANNELS, classes)
        layout.write_synthetic_npy(path + ".part", 0, shapes=shapes)
        os.replace(path + ".part", path)
    return path


def start_tasks(spec, log_dir):
    """Starts the single process and a 1 ps + 2 worker cluster; returns
    ({name: Task}, cluster ports)."""
    from vgg_patch import cluster as cluster_lib  # pylint: disable=import-outside-toplevel
    cluster = cluster_lib.make_cluster(workers=2, ps=1)
    ports = [int(a.rsplit(":", 1)[1]) for job in cluster.values() for a in job]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    tasks = {"single": Task("single", dict(spec, role="single", threads=2,
                                           batch=spec["batch"] * 2, index=0), env, log_dir)}
    for task in cluster_lib.cluster_tasks(cluster):
        name = cluster_lib.task_name(task)
        tasks[name] = Task(name, dict(spec, role=task.job, threads=1, index=task.index),
                           dict(env, TF_CONFIG=cluster_lib.tf_config(cluster, task)), log_dir)
    return tasks, ports


def run_contestant(tasks, contestant, steps, ports):
    """Runs one contestant's processes for ``steps`` steps together; returns
    (seconds per step (the slowest process), lo bytes, socket bytes, loss)."""
    _, names, mode, _, _ = contestant
    lo0, sock0 = lo_bytes(), socket_bytes(ports)
    for name in names:
        tasks[name].send({"mode": mode, "steps": steps})
    replies = [tasks[name].receive(RUN_TIMEOUT) for name in names]
    sock1 = wait_quiet(ports)
    lo1 = lo_bytes()
    return (max(r["seconds"] for r in replies) / steps,
            None if lo0 is None else (lo1 - lo0) / steps,
            None if sock0 is None else (sock1 - sock0) / steps,
            replies[0]["loss"])


def _rounds(tasks, ports, contestants, steps, rounds):
    """Warm-up, then ``rounds`` rotated rounds; returns per-contestant lists."""
    for contestant in contestants:
        run_contestant(tasks, contestant, 1, ports)
    out = {c[0]: {"step_s": [], "lo_bytes": [], "socket_bytes": [], "loss": []}
           for c in contestants}
    loads = []
    for r in range(rounds):
        loads.append(harness.machine_info().get("loadavg"))
        order = contestants[r % len(contestants):] + contestants[:r % len(contestants)]
        for contestant in order:
            got = run_contestant(tasks, contestant, contestant[4] or steps, ports)
            row = dict(zip(("step_s", "lo_bytes", "socket_bytes", "loss"), got))
            for key, value in row.items():
                out[contestant[0]][key].append(value)
            harness.emit_row(dict(row, round=r, contestant=contestant[0]), table="rounds")
        _LOG.info("round %d: %s", r, {k: round(v["step_s"][-1], 3) for k, v in out.items()})
    loads.append(harness.machine_info().get("loadavg"))
    return out, loads


def run(args):
    """Starts the processes, runs the rounds, stops every process by pid."""
    from vgg_patch import cluster as cluster_lib  # pylint: disable=import-outside-toplevel
    size, batch, steps = ((QUICK_SIZE, QUICK_BATCH, QUICK_STEPS) if args.quick
                          else (SIZE, BATCH, STEPS))
    contestants = CONTESTANTS if args.quick else CONTESTANTS + (COMPUTE_224,)
    rounds = harness.repeats(args, 5, 1)
    spec = {"npy": model_file(size, CLASSES), "size": size, "batch": batch // 2,
            "classes": CLASSES}
    if not args.quick:
        spec["spec224"] = {"npy": None, "size": 224, "batch": BATCH_224,
                           "classes": projection.layout.IMAGENET_CLASSES}
    log_dir = tempfile.mkdtemp(prefix="bench_cluster_")
    tasks = {}
    try:
        t0 = time.perf_counter()
        tasks, ports = start_tasks(spec, log_dir)
        ready = {name: task.receive(START_TIMEOUT) for name, task in tasks.items()}
        start_s = time.perf_counter() - t0
        _LOG.info("tasks ready after %.0f s: %s", start_s, ready)
        series, loads = _rounds(tasks, ports, contestants, steps, rounds)
        for task in tasks.values():
            if task.proc.poll() is None and task.name != "ps 0":
                task.send({"stop": True})
    finally:
        cluster_lib.stop_processes([task.proc for task in tasks.values()])
        for task in tasks.values():
            task.close()
        shutil.rmtree(log_dir, ignore_errors=True)
    params = ready["worker 0"]["params"]
    return {"size": size, "batch": batch, "steps": steps, "rounds": rounds,
            "classes": CLASSES, "params": params, "grad_bytes": 4 * params,
            "params224": ready["single"].get("params224"), "batch224": BATCH_224,
            "behavior": {name: r.get("behavior") for name, r in ready.items()},
            "start_s": start_s, "series": series, "loadavg": loads,
            "pids": {name: task.proc.pid for name, task in tasks.items()},
            "exit": {name: task.proc.returncode for name, task in tasks.items()}}


def spread(values, scale=1.0):
    """"median [lower quartile, upper quartile]" of ``values`` x ``scale``."""
    v = sorted(x * scale for x in values if x is not None)
    if not v:
        return ""
    if len(v) == 1:
        return "%.3g" % v[0]
    q = statistics.quantiles(v, n=4, method="inclusive")
    return "%.3g [%.3g, %.3g]" % (statistics.median(v), q[0], q[2])


def _theory_bytes(mode, grad_bytes):
    """Bytes per step over ``lo`` (all processes) the engine needs in theory."""
    ring = 2 * projection.ring_allreduce_bytes(grad_bytes, 2)
    return {"allreduce": ring, "allreduce_each": ring, "allreduce_buckets": ring,
            "ps": 2 * 2 * grad_bytes}.get(mode, 0)


def measured_rows(res):
    """The measured table's rows (dicts), paired with the reference per round."""
    ref = res["series"][REFERENCE]["step_s"]
    rows = []
    for name, names, mode, threads, _ in CONTESTANTS + (COMPUTE_224,):
        got = res["series"].get(name)
        if not got:
            continue
        images = res["batch224"] if mode == "local224" else res["batch"]
        per_process = images if names == ("single",) else images // len(names)
        row = {"what": name, "threads": "%d process%s x %d+%d%s" % (
            len(names), "es" if len(names) > 1 else "", threads, threads,
            " (+ ps 1+1)" if mode == "ps" else ""),
               "batch": "%d (%d each)" % (images, per_process), "steps_s": spread(
                   [1 / t for t in got["step_s"]]),
               "img_s": spread([images / t for t in got["step_s"]]),
               "lo_mb": spread(got["lo_bytes"], 1e-6),
               "sock_mb": spread(got["socket_bytes"], 1e-6),
               "theory_mb": "%.1f" % (_theory_bytes(mode, res["grad_bytes"]) / 1e6)}
        if mode in ("allreduce", "allreduce_each", "allreduce_buckets", "ps"):
            comm = [t - r for t, r in zip(got["step_s"], ref)]
            row["comm_ms"] = spread(comm, 1e3)
            sent = [b for b in got["socket_bytes"] if b is not None]
            if sent and statistics.median(comm) > 0:
                row["gbps"] = "%.2g" % (statistics.median(sent) / len(names) * 8
                                        / statistics.median(comm) / 1e9)
        rows.append(row)
    return rows


def gradient_lines(res):
    """The gradient sizes: the measured model's and VGG19 + CBAM's at 224 px."""
    tensors = projection.vgg19_cbam_tensors()
    grad224 = projection.BYTES_PER_VALUE * sum(tensors)
    fc6 = sum(projection.math.prod(s) for s in projection.layout.LAYER_SHAPES["fc6"])
    return [
        "measured model (VGG19 + CBAM, %d px, %d classes): %s trainable parameters, "
        "%.1f MB of float32 gradients per step" % (
            res["size"], res["classes"], format(res["params"], ","), res["grad_bytes"] / 1e6),
        "at 224 px, 1000 classes (layer table%s): %s parameters (VGG19 %s, fc6 alone %s, "
        "CBAM %s), %.1f MB per step; ring all-reduce sends %.1f MB per worker for 2 "
        "workers (2(N-1)/N x G), up to %.1f MB for many; a ps step pushes and pulls "
        "%.1f MB per worker, and one ps shard carries N times that" % (
            "; the 224 px graph counted %s" % format(res["params224"], ",")
            if res.get("params224") else "", format(sum(tensors), ","),
            format(projection.layout.PARAMS, ","), format(fc6, ","),
            format(sum(projection.cbam_tensors()), ","), grad224 / 1e6,
            projection.ring_allreduce_bytes(grad224, 2) / 1e6, 2 * grad224 / 1e6,
            2 * grad224 / 1e6)]


def render(res):
    """Markdown: the measured table, the gradient sizes, the projection."""
    cols = [("what", "setup"), ("threads", "processes x intra+inter-op threads"),
            ("batch", "images per step"), ("steps_s", "steps/s"), ("img_s", "images/s"),
            ("lo_mb", "MB/step over lo"), ("sock_mb", "MB/step, our sockets"),
            ("theory_mb", "MB/step, theory"), ("comm_ms", "communication ms/step"),
            ("gbps", "Gb/s through each worker (medians: its bytes / communication)")]
    parts = ["### One process vs 2 workers on this machine (VGG19 + CBAM, %d px)" % res["size"],
             harness.format_table(measured_rows(res), cols),
             "Median [quartiles] over %d rounds of %d steps (the 224 px row: 1 step), "
             "contestants rotated each round. Communication = step time minus the "
             "same round's \"%s\" step time. Load average per round: %s. Tasks started "
             "in %.0f s." % (res["rounds"], res["steps"], REFERENCE,
                             "; ".join(res["loadavg"]), res["start_s"])]
    parts.append("\n".join("- " + line for line in gradient_lines(res)))
    got = res["series"].get(COMPUTE_224[0])
    if got:
        seconds_per_image = statistics.median(got["step_s"]) / res["batch224"]
        parts.append(projection.render(seconds_per_image))
    return "\n\n".join(parts)
