"""The trainer on a cluster: this process's place in it, from ``TF_CONFIG``.

Every machine runs the same command; ``TF_CONFIG`` (TensorFlow's standard,
read by :func:`slim_attention.distributed.cluster_from_tf_config`) says which
task this process is. The tasks that train (an optional ``chief``, then the
``worker`` tasks, in that order) form one group: synchronous data
parallelism with collective all-reduce (:mod:`vgg_patch.training.replicas`).
The first of them (the chief, or worker 0) is the chief: it restores or
initialises the variables, broadcasts them, and alone writes files.

A ``ps`` job is refused (see docs/distributed.md, "The trainer on a cluster").

Peers: at start each process waits up to ``--peer-timeout`` for every other
task's server to accept connections, else it stops with :class:`PeerLost`,
whose one line names the unreachable task. During training a collective waits
at most ``--peer-timeout`` for a missing peer; then the chief saves the step
reached, and a process whose peer is gone restarts itself in place
(:func:`restart_process`) to wait for it again and resume.
"""
import logging
import os
import socket
import time

from vgg_patch.cli.common import TrainingFailed, UsageError
from vgg_patch.training import scratch

logger = logging.getLogger("vgg_patch.train")

_POLL_SECS = 0.2
# Consecutive restarts after a failed start-up broadcast (peers restarting too).
RESTARTS_ENV = "VGG_PATCH_CLUSTER_RESTARTS"
MAX_START_RESTARTS = 3


class PeerLost(TrainingFailed):
    """A peer was unreachable for longer than ``--peer-timeout``.

    ``rejoin``: this process should restart itself to wait for the peer
    (:func:`restart_process`; ``starting``: it failed while starting).
    """
    rejoin = starting = False


class AgreedStop:
    """A stop every worker agreed on in a training step (Ctrl-C or SIGTERM on any
    one of them): the step all-reduces each worker's stop flag."""

    def __init__(self):
        self.requested = False

    def agree(self):
        logger.warning("a worker asked to stop: every worker stops after this step")
        self.requested = True


def _reachable(address, timeout=1.0):
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


class Workers:  # pylint: disable=too-many-instance-attributes
    """This process's task in the cluster, and the cluster's training tasks.

    Attributes:
      tasks: ``[(job, index, address)]`` of the training tasks, chief first.
      rank: this process's position in ``tasks``.
      size: ``len(tasks)``.
      is_chief: ``rank == 0``.
      device: this task's device, e.g. ``'/job:worker/replica:0/task:1'``.
      peer_timeout: seconds a peer may be missing.
    """

    def __init__(self, cluster_config, peer_timeout):
        spec, job = cluster_config.cluster_spec, cluster_config.job_name
        if "ps" in spec.jobs:
            raise UsageError("TF_CONFIG has a 'ps' job: this trainer trains on worker-only "
                             "clusters (collective all-reduce); remove the ps tasks (see "
                             "docs/distributed.md, 'The trainer on a cluster')")
        if job not in ("chief", "worker"):
            raise UsageError("TF_CONFIG task type %r does not train; run this command as "
                             "a 'chief' or 'worker' task" % job)
        self.tasks = [(j, i, spec.task_address(j, i)) for j in ("chief", "worker")
                      if j in spec.jobs for i in range(spec.num_tasks(j))]
        self.rank = [(j, i) for j, i, _ in self.tasks].index(
            (job, cluster_config.task_index))
        self.size = len(self.tasks)
        self.is_chief = self.rank == 0
        self.job, self.index = job, cluster_config.task_index
        self.device = "/job:%s/replica:0/task:%d" % (job, self.index)
        self.cluster_spec = spec
        self.peer_timeout = float(peer_timeout)
        self.server = self.config = None

    def name(self, rank):
        """``'worker 1 (host:port)'`` for the task at ``rank``."""
        job, index, address = self.tasks[rank]
        return "%s %d (%s)" % (job, index, address)

    def shard(self, order, batch_size):
        """This worker's rows of ``order`` cut into global batches of ``batch_size``.

        Worker ``r`` of ``n`` takes rows ``[r*b, (r+1)*b)`` (``b = batch_size / n``)
        of every global batch; the last, smaller batch is cut into ``n``
        near-equal shares (``np.array_split``). A last batch with fewer images
        than workers is left out (a worker cannot train on nothing while the
        others wait for it): see :func:`steps_per_epoch`.
        """
        import numpy as np
        order = np.asarray(order)
        full = len(order) // batch_size * batch_size
        rows = order[:full].reshape(-1, self.size, batch_size // self.size)[:, self.rank]
        rest = order[full:]
        tail = np.array_split(rest, self.size)[self.rank] if len(rest) >= self.size else []
        return np.concatenate([rows.reshape(-1), np.asarray(tail, order.dtype)])

    def split(self, items):
        """This worker's part of ``items`` (``np.array_split``: near-equal, in order)."""
        import numpy as np
        parts = np.array_split(np.arange(len(items)), self.size)[self.rank]
        return [items[i] for i in parts] if isinstance(items, list) else items[parts]

    def start(self, base_config=None):
        """Starts this task's server; returns the session config to use with it."""
        import tensorflow as tf
        from vgg_patch.training.replicas import collective_config
        leader_job, leader_index, _ = self.tasks[0]
        self.config = collective_config(
            "/job:%s/replica:0/task:%d" % (leader_job, leader_index),
            "/job:%s/task:%d" % (self.job, self.index), base_config)
        self.server = tf.distribute.Server(self.cluster_spec, job_name=self.job,
                                           task_index=self.index, config=self.config,
                                           start=True)
        logger.info("cluster: %s of %d training tasks%s", self.name(self.rank), self.size,
                    " (chief)" if self.is_chief else "")
        return self.config

    def missing_peers(self):
        """The names of the peers whose servers do not accept connections now."""
        return [self.name(r) for r, (_, _, address) in enumerate(self.tasks)
                if r != self.rank and not _reachable(address)]

    def wait_for_peers(self, stop=None):
        """Waits up to ``peer_timeout`` for every peer's server.

        Raises:
          PeerLost: naming the peers still unreachable.
        """
        deadline = time.time() + self.peer_timeout
        while True:
            missing = self.missing_peers()
            if not missing or (stop is not None and stop.requested):
                return
            if time.time() >= deadline:
                raise PeerLost("%s unreachable for %g s (--peer-timeout); is it started, "
                               "with the same TF_CONFIG cluster?"
                               % (", ".join(missing), self.peer_timeout))
            time.sleep(_POLL_SECS)

    def lost(self, step, saved=None, starting=False, stopping=False):
        """The :class:`PeerLost` for a collective that failed at ``step``.

        When a peer's server is gone (killed, crashed), or the start-up
        broadcast failed (peers restarting), ``rejoin`` is set: the process
        restarts itself (:func:`restart_process`) to wait for the peer and
        resume from the chief's checkpoint; a peer that still answers
        connections but not the collective (stalled) ends the run.
        """
        missing, deadline = self.missing_peers(), time.time() + min(self.peer_timeout, 5.0)
        while not missing and time.time() < deadline:  # a killed peer's port closes late
            time.sleep(_POLL_SECS)
            missing = self.missing_peers()
        restarts = int(os.environ.get(RESTARTS_ENV, "0"))
        rejoin = not stopping and bool(missing or (starting and
                                                   restarts < MAX_START_RESTARTS))
        who = ", ".join(missing) if missing else "a peer (one of %s)" % ", ".join(
            self.name(r) for r in range(self.size) if r != self.rank)
        where = "while starting" if starting else "after step %d" % step
        text = "%s unreachable %s%s%s" % (
            who, where, "" if missing else " for %g s (--peer-timeout)" % self.peer_timeout,
            "; saved %s" % saved if saved else "")
        if rejoin:
            text += "; restarting this process to wait for it and resume"
        else:
            text += ("; every process stops; run the same command on every machine to "
                     "resume from the chief's last checkpoint")
        err = PeerLost(text)
        err.rejoin, err.starting = rejoin, starting
        return err


def restart_process(starting):
    """Replaces this process by a fresh run of the same command (same pid).

    A failed collective leaves the process's collective runtime aborted, so a
    worker rejoins by starting afresh: its server (same address) and session
    are new, it waits for its peers (``--peer-timeout``) and receives the
    chief's variables, which the chief restored from its last checkpoint.
    """
    import sys
    env = dict(os.environ)
    env[RESTARTS_ENV] = str(int(env.get(RESTARTS_ENV, "0")) + 1 if starting else 0)
    sys.stdout.flush()
    sys.stderr.flush()
    scratch.remove_own()  # atexit does not run across execve
    os.execve(sys.executable, [sys.executable] + sys.orig_argv[1:], env)


def scratch_dir():
    """A temporary folder for a non-chief worker's demo images (see :mod:`.scratch`)."""
    return scratch.make_dir()


def dataset_fingerprint(dataset):
    """Float32-exact numbers that differ when two workers see different images:
    the image counts and CRCs of the file names (relative to the data folder)
    and labels, which every worker all-reduces and compares at start."""
    import zlib
    import numpy as np
    values = []
    for paths, labels in ((dataset.train_paths, dataset.train_labels),
                          (dataset.val_paths, dataset.val_labels)):
        names = "\n".join(os.path.relpath(p, dataset.data_dir) for p in paths)
        crc = zlib.crc32(np.asarray(labels, np.int64).tobytes(), zlib.crc32(names.encode()))
        values += [len(paths), crc % (1 << 20), crc >> 20]
    return np.asarray(values, np.float32)


def steps_per_epoch(num_images, batch_size, workers):
    """Training steps of one epoch (a last batch smaller than the workers is left out)."""
    rest = num_images % batch_size
    if workers is not None and 0 < rest < workers.size:
        return num_images // batch_size
    return -(-num_images // batch_size)


def start_weights(weights, workers, flag="--weights"):
    """The start-weights file (``--weights``, or ``flag``: slim-attention-train's
    ``--checkpoint``) this process builds its network from.

    Only the chief reads it: every other worker builds the same variables
    from scratch (their shapes follow the network, which the chief checked
    against the file) and receives the chief's values in the start-up
    broadcast, so the file need be on the chief's machine alone.
    """
    if weights is None or workers is None or workers.is_chief:
        return weights
    logger.info("%s %s is not read on this worker: the chief broadcasts its "
                "values at start", flag, weights)
    return None


def receives_weights():
    """True when ``TF_CONFIG`` makes this process a training task other than
    the chief (see :func:`start_weights`); a bad ``TF_CONFIG`` gives False and
    is reported by :func:`from_environment`."""
    if not os.environ.get("TF_CONFIG"):
        return False
    from slim_attention.distributed import cluster_from_tf_config
    try:
        return not Workers(cluster_from_tf_config(), 0).is_chief
    except (ValueError, UsageError):
        return False


def from_environment(args):
    """A :class:`Workers` when ``TF_CONFIG`` is set, else None (one process).

    Raises:
      UsageError: a bad ``TF_CONFIG``, a ``ps`` job, or a ``--batch-size`` the
        workers cannot share equally.
    """
    if not os.environ.get("TF_CONFIG"):
        return None
    from slim_attention.distributed import cluster_from_tf_config
    try:
        workers = Workers(cluster_from_tf_config(), getattr(args, "peer_timeout", 60.0))
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.batch_size % workers.size:
        raise UsageError("--batch-size %d is the global batch and must be divisible by "
                         "the %d training tasks of TF_CONFIG (each takes an equal share)"
                         % (args.batch_size, workers.size))
    return workers
