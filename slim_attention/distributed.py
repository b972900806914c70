"""TF1 slim training on a ps/worker cluster: repairs and a ``TF_CONFIG`` helper.

TF1 programs trained on several machines with between-graph replication:
every process builds the graph under ``tf.compat.v1.train.replica_device_setter``
(or research/slim's ``model_deploy``), wraps its optimizer in
``tf.compat.v1.train.SyncReplicasOptimizer`` and calls
``slim.learning.train(train_op, logdir, sync_optimizer=..., master=server.target,
is_chief=...)``. On TF 2.21 that still works, with two stalls that this module
repairs on ``import slim_attention``:

* **a non-chief waits 30 s for the chief.** ``SessionManager.wait_for_session``
  (used by ``Supervisor`` and ``MonitoredTrainingSession`` on non-chief tasks)
  sleeps ``recovery_wait_secs`` (30 s, which ``slim.learning.train`` cannot
  change) each time the chief has not initialised the variables yet. Repaired:
  it tries again after 0.1 s, doubling the pause up to ``recovery_wait_secs``.
* **the chief waits 120 s at the end of a synchronous run.** The chief's
  ``SyncReplicasOptimizer`` queue runner is blocked waiting for gradients the
  other workers will never send; ``Supervisor.stop`` (and
  ``MonitoredTrainingSession``'s close) waits ``stop_grace_period_secs``
  (120 s) for it, then ``slim.learning.train`` raises ``RuntimeError:
  Coordinator stopped with threads still running``. Repaired: the chief queue
  runner's thread is not one the coordinator waits for. Its queue is still
  closed when training stops (which releases the workers waiting for a token),
  and closing the session ends its blocked step.

Both repairs are additive: only non-chief tasks call ``wait_for_session`` (it
returns the same session, or raises the same ``DeadlineExceededError``), and
the repaired chief queue runner runs the same ops on the same queue; only the
end differs, where the coordinator no longer waits for its blocked thread. A
program without ``SyncReplicasOptimizer`` or a cluster runs exactly as before.
TF1 programs with ``Supervisor`` threads need graph mode in every thread on TF2
(``tf.compat.v1.disable_eager_execution()``); that is not repaired here.

:func:`cluster_from_tf_config` reads TensorFlow's standard ``TF_CONFIG``
(``{"cluster": {"worker": [...], "ps": [...]}, "task": {"type": "worker",
"index": 0}}``) into what a TF1 program builds from its ``--ps_hosts``,
``--worker_hosts``, ``--job_name`` and ``--task_index`` flags.
"""
import collections
import functools
import json
import logging
import os
import threading
import time

_LOG = logging.getLogger(__name__)

# First pause of the repaired readiness wait; it doubles up to recovery_wait_secs.
FIRST_READINESS_POLL_SECS = 0.1
# Job names TF_CONFIG may use for a task that runs the training loop.
_TRAINING_JOBS = ("chief", "worker")
_KNOWN_JOBS = ("chief", "worker", "ps", "evaluator")


class ClusterConfig(collections.namedtuple(
        "ClusterConfig", ["cluster_spec", "job_name", "task_index"])):
    """The cluster and this process's task in it, as TF1 programs use them.

    Attributes:
      cluster_spec: a ``tf.train.ClusterSpec`` (jobs ``chief``, ``worker``, ``ps``).
      job_name: this task's job (``'worker'``, ``'ps'``, ``'chief'`` ...).
      task_index: this task's index within its job.
    """
    __slots__ = ()

    @property
    def is_chief(self):
        """True for the ``chief`` task, or for worker 0 when there is no chief."""
        if self.job_name == "chief":
            return True
        return (self.job_name == "worker" and self.task_index == 0
                and "chief" not in self.cluster_spec.jobs)

    @property
    def num_replicas(self):
        """Tasks that train (chief + workers): ``SyncReplicasOptimizer``'s replicas."""
        return sum(self.cluster_spec.num_tasks(job) for job in _TRAINING_JOBS
                   if job in self.cluster_spec.jobs)

    @property
    def num_ps_tasks(self):
        """Number of parameter-server tasks (0 without a ``ps`` job)."""
        jobs = self.cluster_spec.jobs
        return self.cluster_spec.num_tasks("ps") if "ps" in jobs else 0

    @property
    def worker_device(self):
        """This task's device prefix, e.g. ``'/job:worker/task:1'``."""
        return "/job:%s/task:%d" % (self.job_name, self.task_index)


def _tf_config_error(what, value, expected):
    return ValueError("TF_CONFIG: %s is %r; expected %s" % (what, value, expected))


def cluster_from_tf_config(tf_config=None):
    """Reads a ``TF_CONFIG`` into the cluster and task a TF1 program needs.

    Args:
      tf_config: the JSON text, or the parsed dict; None reads the ``TF_CONFIG``
        environment variable.

    Returns:
      A :class:`ClusterConfig`; ``tf.compat.v1.train.Server(config.cluster_spec,
      job_name=config.job_name, task_index=config.task_index)`` starts the task.

    Raises:
      ValueError: if ``TF_CONFIG`` is unset or not JSON, or its ``cluster`` or
        ``task`` is missing or inconsistent (the message names the field).
    """
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG")
        if not tf_config:
            raise ValueError("TF_CONFIG is not set; expected a JSON object like "
                             '{"cluster": {"worker": ["host:port", ...]}, '
                             '"task": {"type": "worker", "index": 0}}')
    if isinstance(tf_config, str):
        try:
            tf_config = json.loads(tf_config)
        except ValueError as error:
            raise ValueError("TF_CONFIG is not valid JSON (%s): %r" % (error, tf_config))
    if not isinstance(tf_config, dict):
        raise _tf_config_error("the value", tf_config, "a JSON object")
    cluster = tf_config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise _tf_config_error("cluster", cluster,
                               'an object of job name -> list of "host:port"')
    for job, hosts in cluster.items():
        if job not in _KNOWN_JOBS:
            raise _tf_config_error("cluster job name", job, "one of %s" % (_KNOWN_JOBS,))
        if (not isinstance(hosts, list) or not hosts
                or not all(isinstance(h, str) and ":" in h for h in hosts)):
            raise _tf_config_error("cluster[%r]" % job, hosts,
                                   'a non-empty list of "host:port" strings')
    if not any(job in cluster for job in _TRAINING_JOBS):
        raise _tf_config_error("cluster", cluster, "a 'worker' or 'chief' job")
    task = tf_config.get("task")
    if not isinstance(task, dict):
        raise _tf_config_error("task", task, 'an object {"type": ..., "index": ...}')
    job_name, index = task.get("type"), task.get("index", 0)
    if job_name not in cluster:
        raise _tf_config_error("task type", job_name, "one of the cluster's jobs %s"
                               % sorted(cluster))
    if not isinstance(index, int) or isinstance(index, bool) or \
            not 0 <= index < len(cluster[job_name]):
        raise _tf_config_error("task index", index, "an integer in [0, %d)"
                               % len(cluster[job_name]))
    import tensorflow as tf  # at call time: reading flags needs no TensorFlow
    return ClusterConfig(tf.train.ClusterSpec(cluster), job_name, index)


# --- repair 1: the non-chief readiness wait ---------------------------------------

def _wait_for_session_polling(original, self, master, config=None,
                              max_wait_secs=float("Inf")):
    """``SessionManager.wait_for_session`` with short first pauses (see module doc)."""
    longest = getattr(self, "_recovery_wait_secs", 0)
    if not longest or longest <= FIRST_READINESS_POLL_SECS:
        return original(self, master, config=config, max_wait_secs=max_wait_secs)
    import tensorflow as tf
    max_wait_secs = float("Inf") if max_wait_secs is None else max_wait_secs
    deadline = time.time() + max_wait_secs
    pause = FIRST_READINESS_POLL_SECS
    logged = 0.0
    while True:
        try:
            # max_wait_secs=0: one attempt, DeadlineExceededError if not ready.
            return original(self, master, config=config, max_wait_secs=0)
        except tf.errors.DeadlineExceededError:
            pass
        if time.time() + pause > deadline:
            raise tf.errors.DeadlineExceededError(
                None, None, "Session was not ready after waiting %d secs." % max_wait_secs)
        if time.time() - logged >= longest:
            logged = time.time()
            _LOG.info("Waiting for the chief to initialise the model (next check in "
                      "%.1f s, then at most every %g s).", pause, longest)
        time.sleep(pause)
        pause = min(2 * pause, longest)


# --- repair 2: the chief's blocked SyncReplicasOptimizer queue runner -------------

def _run_until_stopped(sess, op, coord):
    """Runs ``op`` in a loop until ``coord`` stops; an error after the stop (the
    session closed under the blocked step) is the expected end, not a failure."""
    try:
        run = sess.make_callable(op)
        while not coord.should_stop():
            run()
    except Exception as error:  # noqa: BLE001 -- reported to the coordinator
        if not coord.should_stop():
            coord.request_stop(error)
        else:
            _LOG.debug("sync replicas chief queue runner ended: %s", error)


def _close_on_stop(sess, cancel_op, coord):
    """Closes the token queue once ``coord`` stops: waiting workers then stop."""
    coord.wait_for_stop()
    try:
        sess.run(cancel_op)
    except Exception as error:  # noqa: BLE001 -- the session may be gone already
        _LOG.debug("closing the sync token queue: %s", error)


def _chief_queue_runner_class():
    from tensorflow.python.training import queue_runner_impl

    class SyncChiefQueueRunner(queue_runner_impl.QueueRunner):
        """The chief queue runner of ``SyncReplicasOptimizer``, minus the stall.

        Only its close-on-stop thread is registered with the coordinator; the
        thread running the sync op (blocked on gradients no worker will send,
        once training stops) is a daemon the coordinator does not wait for.
        """

        def create_threads(self, sess, coord=None, daemon=False, start=False):
            if coord is None:
                return super().create_threads(sess, coord, daemon, start)
            threads = [threading.Thread(
                target=_run_until_stopped, args=(sess, op, coord), daemon=True,
                name="SyncChiefQueueRunner-%s-%s" % (self.name, op.name))
                for op in self.enqueue_ops]
            closer = threading.Thread(
                target=_close_on_stop, args=(sess, self.cancel_op, coord),
                daemon=True, name="SyncChiefQueueRunner-%s-close_on_stop" % self.name)
            coord.register_thread(closer)
            threads.append(closer)
            if start:
                for thread in threads:
                    thread.start()
            return threads

    return SyncChiefQueueRunner


def _chief_queue_runner_without_stall(original, self):
    """``SyncReplicasOptimizer.get_chief_queue_runner`` returning the runner
    above (the same queue and ops; one instance per optimizer)."""
    runner = original(self)
    cached = getattr(self, "_slim_attention_chief_runner", None)
    if cached is not None and cached[0] is runner:
        return cached[1]
    repaired = _chief_queue_runner_class()(
        queue=runner.queue, enqueue_ops=runner.enqueue_ops, close_op=runner.close_op,
        cancel_op=runner.cancel_op,
        queue_closed_exception_types=runner.queue_closed_exception_types)
    self._slim_attention_chief_runner = (runner, repaired)
    return repaired


def _wrap_once(owner, name, replacement):
    """Replaces ``owner.name`` by ``replacement(original, ...)``; idempotent."""
    original = getattr(owner, name)
    if getattr(original, "_slim_attention_repair", False):
        return False
    wrapped = functools.wraps(original)(
        lambda *args, **kwargs: replacement(original, *args, **kwargs))
    wrapped._slim_attention_repair = True
    setattr(owner, name, wrapped)
    return True


def apply():
    """Installs the two repairs (idempotent); run by ``import slim_attention``.

    Returns:
      The names of the repairs this call installed (empty when already there).
    """
    from tensorflow.python.training import session_manager
    from tensorflow.python.training import sync_replicas_optimizer

    installed = []
    if _wrap_once(session_manager.SessionManager, "wait_for_session",
                  _wait_for_session_polling):
        installed.append("SessionManager.wait_for_session: short readiness polls")
    if _wrap_once(sync_replicas_optimizer.SyncReplicasOptimizer,
                  "get_chief_queue_runner", _chief_queue_runner_without_stall):
        installed.append("SyncReplicasOptimizer.get_chief_queue_runner: no stop stall")
    for name in installed:
        _LOG.debug("slim_attention distributed: %s", name)
    return installed
