"""Runs one command as a whole TensorFlow cluster on this machine.

``python -m vgg_patch.cluster --workers 2 --ps 1 -- python train.py --flags``
starts one process per task (ps tasks first, then the chief, then the workers)
on 127.0.0.1 with free ports, each with its ``TF_CONFIG``::

    {"cluster": {"worker": ["127.0.0.1:P1", "127.0.0.1:P2"], "ps": ["127.0.0.1:P0"]},
     "task": {"type": "worker", "index": 1}}

``--tf1-flags`` also appends TF1's ``--ps_hosts=... --worker_hosts=...
--job_name=... --task_index=...`` for programs that read flags instead.

Their output is merged line by line, each line prefixed with its task
(``[worker 1] ...``). The launcher stops every task (its whole process group)
when one fails (a non-zero exit, or a ps task that exits), on Ctrl-C or
SIGTERM, or after ``--timeout`` seconds; ps tasks, which serve until killed,
are stopped once every chief/worker task has exited 0. The exit status is 0
when all of those did, else non-zero, with a last line naming the task.

Standard library only: the launcher itself starts in milliseconds; only the
tasks import TensorFlow. See docs/distributed.md.
"""
import argparse
import collections
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

# Start order of the jobs; ps tasks first so workers find their servers.
JOBS = ("ps", "chief", "worker")
# Seconds a stopped task gets between SIGTERM and SIGKILL (to its process group).
STOP_GRACE_SECS = 5.0
_POLL_SECS = 0.05
# Exit statuses of the launcher itself, beside a failed task's own status.
EXIT_INTERRUPTED = 130
EXIT_TIMEOUT = 124

Task = collections.namedtuple("Task", ["job", "index"])
ClusterRun = collections.namedtuple("ClusterRun", ["returncode", "returncodes", "message", "pids"])


class _Stop(Exception):
    """Raised in the launcher's main thread by SIGINT/SIGTERM."""


def task_name(task):
    """``'worker 1'``: how a task is named in log prefixes and messages."""
    return "%s %d" % task


def free_ports(count, host="127.0.0.1"):
    """Returns ``count`` distinct TCP ports free on ``host`` (all held open
    together while choosing, so none is picked twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _check_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError("%s must be an integer >= %d, got %r" % (name, minimum, value))


def make_cluster(workers, ps=0, chief=False, host="127.0.0.1", ports=None):
    """The cluster dict of ``TF_CONFIG``: job name -> list of ``"host:port"``.

    Args:
      workers: number of ``worker`` tasks (>= 1, or >= 0 with ``chief``).
      ps: number of ``ps`` tasks.
      chief: add one ``chief`` task (else worker 0 is the chief).
      host: address every task listens on.
      ports: the ports to use, in start order (ps, chief, workers); None picks
        free ones.

    Raises:
      ValueError: if a count is not a non-negative integer, there is no task
        that trains, or ``ports`` has the wrong length.
    """
    _check_count("ps", ps, 0)
    _check_count("workers", workers, 0 if chief else 1)
    counts = {"ps": ps, "chief": 1 if chief else 0, "worker": workers}
    total = sum(counts.values())
    if ports is None:
        ports = free_ports(total, host)
    if len(ports) != total:
        raise ValueError("ports must hold %d ports (ps, chief, workers), got %r"
                         % (total, ports))
    cluster, position = {}, 0
    for job in JOBS:
        if counts[job]:
            cluster[job] = ["%s:%d" % (host, port)
                            for port in ports[position:position + counts[job]]]
            position += counts[job]
    return cluster


def cluster_tasks(cluster):
    """The cluster's tasks in start order (ps, chief, workers)."""
    return [Task(job, index) for job in JOBS for index in range(len(cluster.get(job, ())))]


def tf_config(cluster, task):
    """The ``TF_CONFIG`` JSON text of ``task`` in ``cluster``."""
    return json.dumps({"cluster": cluster,
                       "task": {"type": task.job, "index": task.index}})


def tf1_flags(cluster, task):
    """TF1's four cluster flags for ``task``: ``--ps_hosts``, ``--worker_hosts``,
    ``--job_name``, ``--task_index`` (no ``--ps_hosts`` without ps tasks; TF1
    programs had no ``chief`` job).

    Raises:
      ValueError: if ``cluster`` has a ``chief`` job.
    """
    if "chief" in cluster:
        raise ValueError("TF1 flags have no chief job: use --workers N without --chief "
                         "(worker 0 is the chief), or drop --tf1-flags")
    flags = ["--ps_hosts=" + ",".join(cluster["ps"])] if "ps" in cluster else []
    return flags + ["--worker_hosts=" + ",".join(cluster["worker"]),
                    "--job_name=" + task.job, "--task_index=%d" % task.index]


def _pump(stream, prefix, output, lock):
    """Copies ``stream`` to ``output`` line by line, each line prefixed."""
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        with lock:
            output.write("%s %s\n" % (prefix, line))
            output.flush()
    stream.close()


def _start(command, cluster, task, use_tf1_flags, env, output, lock):
    """Starts one task in a process group of its own; returns (Popen, pump thread)."""
    task_env = dict(os.environ if env is None else env)
    task_env["TF_CONFIG"] = tf_config(cluster, task)
    argv = list(command) + (tf1_flags(cluster, task) if use_tf1_flags else [])
    proc = subprocess.Popen(argv, env=task_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    pump = threading.Thread(target=_pump, args=(proc.stdout, "[%s]" % task_name(task),
                                                output, lock), daemon=True)
    pump.start()
    return proc, pump


def _signal_groups(procs, signum):
    for proc in procs:
        try:
            os.killpg(proc.pid, signum)  # each task leads its own process group
        except (ProcessLookupError, PermissionError):
            pass


def _wait_all(procs, secs):
    deadline = time.monotonic() + secs
    while any(proc.poll() is None for proc in procs) and time.monotonic() < deadline:
        time.sleep(_POLL_SECS)


def stop_processes(procs, grace_secs=STOP_GRACE_SECS):
    """Stops each process's whole group: SIGTERM, then SIGKILL to what is left
    after ``grace_secs``; returns once every process has exited and been reaped."""
    _signal_groups(procs, signal.SIGTERM)
    _wait_all(procs, grace_secs)
    _signal_groups(procs, signal.SIGKILL)
    _wait_all(procs, 30)


def _watch(running, deadline):
    """Waits until a task fails or all chief/worker tasks exit 0; returns
    (returncode, message) -- message None on success."""
    while True:
        trainers_left = False
        for task, proc in running.items():
            code = proc.poll()
            if task.job == "ps" and code is not None:
                return (code or 1), "%s exited (status %d) while the others ran" % (
                    task_name(task), code)
            if task.job != "ps" and code:
                return code if code > 0 else 1, "%s failed with status %d" % (
                    task_name(task), code)
            trainers_left = trainers_left or (task.job != "ps" and code is None)
        if not trainers_left:
            return 0, None
        if deadline is not None and time.monotonic() > deadline:
            return EXIT_TIMEOUT, "timed out: tasks still running: %s" % ", ".join(
                task_name(t) for t, p in running.items() if p.poll() is None)
        time.sleep(_POLL_SECS)


def run_cluster(command, workers, ps=0, chief=False, use_tf1_flags=False,
                host="127.0.0.1", env=None, output=None, timeout=None):
    """Runs ``command`` once per task of a local cluster; see the module doc.

    Args:
      command: the program and its arguments (a non-empty list of strings).
      workers, ps, chief, host: the cluster, as :func:`make_cluster`.
      use_tf1_flags: append :func:`tf1_flags` to each task's command.
      env: the tasks' environment (None: this process's), plus ``TF_CONFIG``.
      output: text stream for the merged, prefixed output (None: sys.stdout).
      timeout: seconds before every task is stopped as a failure (None: none).

    Returns:
      A ``ClusterRun(returncode, returncodes, message, pids)``: ``returncode`` is
      0 when every chief and worker task exited 0; ``returncodes`` and ``pids``
      map task names (``'worker 1'``) to exit statuses (negative: ended by that
      signal) and process ids; ``message`` names the failure, or is None.

    Raises:
      ValueError: for an empty command or a bad cluster (see make_cluster).
    """
    if isinstance(command, str) or not command or \
            not all(isinstance(arg, str) for arg in command):
        raise ValueError("command must be a non-empty list of strings, got %r" % (command,))
    if timeout is not None and not timeout > 0:
        raise ValueError("timeout must be a positive number of seconds, got %r" % (timeout,))
    cluster = make_cluster(workers, ps, chief, host)
    if use_tf1_flags:
        tf1_flags(cluster, Task("worker", 0))  # fails early for a chief
    output = sys.stdout if output is None else output
    lock = threading.Lock()
    running, pumps = collections.OrderedDict(), []
    code, message = EXIT_INTERRUPTED, "interrupted: stopping every task"
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        for task in cluster_tasks(cluster):
            running[task], pump = _start(command, cluster, task, use_tf1_flags,
                                         env, output, lock)
            pumps.append(pump)
        code, message = _watch(running, deadline)
    finally:
        stop_processes(list(running.values()))
        for pump in pumps:
            pump.join(5)
    names = [task_name(task) for task in running]
    return ClusterRun(code, collections.OrderedDict(
        zip(names, (proc.returncode for proc in running.values()))), message,
        collections.OrderedDict(zip(names, (proc.pid for proc in running.values()))))


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m vgg_patch.cluster",
        description="Run COMMAND once per task of a TensorFlow cluster on this "
                    "machine, with TF_CONFIG set per task; merged, prefixed logs.",
        epilog="example: python -m vgg_patch.cluster --workers 2 --ps 1 -- "
               "python train.py --train_dir=/tmp/train  (see docs/distributed.md)")
    parser.add_argument("--workers", type=int, default=2, help="worker tasks (default 2)")
    parser.add_argument("--ps", type=int, default=0, help="parameter-server tasks (default 0)")
    parser.add_argument("--chief", action="store_true",
                        help="add a 'chief' task (default: worker 0 is the chief)")
    parser.add_argument("--tf1-flags", action="store_true",
                        help="also append --ps_hosts/--worker_hosts/--job_name/--task_index")
    parser.add_argument("--host", default="127.0.0.1", help="address of every task")
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop every task and fail after this many seconds")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="-- then the program and its arguments")
    return parser


def _raise_stop(signum, frame):
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, signal.SIG_IGN)  # a second signal must not cut the cleanup
    raise _Stop()


def main(argv=None):
    """Command line: parse, run the cluster, print the outcome; returns the status."""
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given: put it after --, e.g. -- python train.py")
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = run_cluster(command, args.workers, args.ps, args.chief,
                             args.tf1_flags, args.host, timeout=args.timeout)
    except ValueError as error:
        parser.error(str(error))
    except _Stop:
        print("[cluster] interrupted: every task stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    summary = ", ".join("%s: %s" % item for item in result.returncodes.items())
    if result.message:
        print("[cluster] %s (%s)" % (result.message, summary), file=sys.stderr)
    else:
        print("[cluster] done (%s)" % summary, file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
