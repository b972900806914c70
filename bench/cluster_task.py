"""One process of the ``cluster`` case (bench/case_cluster.py): a task that
builds VGG19 + CBAM training graphs and runs steps on command.

``python bench/cluster_task.py SPEC_JSON`` with ``SPEC_JSON`` =
``{"role": "single" | "worker" | "ps", "npy": ..., "size": ..., "batch": ...,
"classes": ..., "threads": ..., "index": ...}``; a worker or ps task reads its
cluster from ``TF_CONFIG`` (``vgg_patch.cluster.tf_config``).

- ``single``: one process, a local ``tf.compat.v1.Session``; mode ``local``,
  and ``local224`` when the spec has ``spec224`` (overrides: 224 px, fresh
  weights, its own batch).
- ``worker``: a ``tf.distribute.Server`` task holding two graphs:
  * its own copy of the variables, with three train ops: ``allreduce``
    (gradients averaged over the workers by one packed collective all-reduce,
    ``vgg_patch.training.replicas.Collectives``, then applied: synchronous
    data parallelism without a ps), ``allreduce_each`` (one all-reduce per
    gradient tensor, each sent as soon as backpropagation produces it),
    ``allreduce_buckets`` (packs of ``BUCKET_BYTES`` in backpropagation's
    order) and
    ``local`` (the same gradients applied unreduced: the worker's compute
    alone, no exchange);
  * mode ``ps``: variables on the ps job (``replica_device_setter``), the
    optimizer wrapped in ``SyncReplicasOptimizer``, in a
    ``MonitoredTrainingSession`` (worker 0 is the chief).
- ``ps``: serves variables until stopped.

Protocol, one JSON object per line: the task prints ``CLUSTER_TASK
{"ready": ...}`` once its graphs are built and initialised, then answers each
stdin line ``{"mode": m, "steps": n}`` with ``CLUSTER_TASK {"seconds": ...,
"loss": ...}`` (wall time of the ``n`` steps in this process) and exits on
``{"stop": true}`` or at end of input. TensorFlow logs go to stderr.
"""
import json
import os
import sys
import time

import numpy as np

PREFIX = "CLUSTER_TASK "
#: Size of the all-reduce packs of mode ``allreduce_buckets`` (float32 bytes).
BUCKET_BYTES = 25 * 2**20
#: Plain SGD: the step's cost is the gradients and one update, as in every engine.
LEARNING_RATE = 1e-4


def reply(obj):
    """One protocol line on stdout."""
    sys.stdout.write(PREFIX + json.dumps(obj) + "\n")
    sys.stdout.flush()


def config_proto(threads, leader=None, device_filter=None):
    """Session/server config: ``threads`` intra- and inter-op threads; for
    worker-only all-reduce, the collective group leader
    (``vgg_patch.training.replicas.collective_config``)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from vgg_patch.training import replicas  # pylint: disable=import-outside-toplevel
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                      inter_op_parallelism_threads=threads,
                                      allow_soft_placement=False)
    return replicas.collective_config(leader, device_filter, config) if leader else config


def build_loss(spec, seed):
    """VGG19 + CBAM (the synthetic file's weights) on a fixed random batch of
    this task's share; returns the mean cross-entropy."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from vgg_patch.vgg19 import Vgg19  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng(seed)
    size, batch = spec["size"], spec["batch"]
    images = tf.constant(rng.random((batch, size, size, 3), dtype=np.float32))
    labels = tf.constant(rng.integers(0, spec["classes"], batch).astype(np.int32))
    vgg = Vgg19(spec["npy"], num_classes=spec["classes"], dropout=0.5)
    vgg.build(images, train_mode=True)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=vgg.fc8))


def reduce_in_buckets(collectives, grads, bucket_bytes):
    """``grads`` averaged in packs of about ``bucket_bytes``, filled in
    backpropagation's order (last layer first), so a pack goes out as soon as
    its own gradients exist; a larger tensor is a pack of its own."""
    reduced, bucket, size = [None] * len(grads), [], 0
    for i in reversed(range(len(grads))):
        bucket.append(i)
        size += 4 * grads[i].shape.num_elements()
        if size >= bucket_bytes or i == 0:
            for j, value in zip(bucket, collectives.all_reduce([grads[j] for j in bucket])):
                reduced[j] = value
            bucket, size = [], 0
    return reduced


def local_graph(spec, device, group_size):
    """The task's own variables; returns (graph, {mode: fetches}, init op,
    trainable parameter count)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from vgg_patch.training import replicas  # pylint: disable=import-outside-toplevel
    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), tf.device(device):
        loss = build_loss(spec, seed=spec["index"])
        variables = tf1.trainable_variables()
        grads = tf.gradients(loss, variables)
        opt = tf1.train.GradientDescentOptimizer(LEARNING_RATE)
        updates = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
        with tf.control_dependencies(updates):
            ops = {"local": [opt.apply_gradients(zip(grads, variables)), loss]}
            if group_size > 1:
                collectives = replicas.Collectives(group_size)
                packed = collectives.all_reduce(grads, mean=True)
                ops["allreduce"] = [opt.apply_gradients(zip(packed, variables)), loss]
                each = collectives.all_reduce(grads, mean=True, pack=False)
                ops["allreduce_each"] = [opt.apply_gradients(zip(each, variables)), loss]
                buckets = reduce_in_buckets(collectives, grads, BUCKET_BYTES)
                ops["allreduce_buckets"] = [opt.apply_gradients(zip(buckets, variables)),
                                            loss]
        init = tf1.global_variables_initializer()
        params = sum(int(np.prod(v.shape.as_list())) for v in variables)
    return graph, ops, init, params


def ps_session(spec, server, cluster, index):
    """The ps engine: ``replica_device_setter`` + ``SyncReplicasOptimizer`` in
    a ``MonitoredTrainingSession``; returns (session, fetches)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import slim_attention  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    tf1 = tf.compat.v1
    workers = cluster.num_tasks("worker")
    graph = tf.Graph()
    with graph.as_default():
        with tf1.device(tf1.train.replica_device_setter(
                worker_device="/job:worker/task:%d" % index, cluster=cluster)):
            step = tf1.train.get_or_create_global_step()
            loss = build_loss(spec, seed=index)  # the file is read here, stored on the ps
            opt = tf1.train.SyncReplicasOptimizer(
                tf1.train.GradientDescentOptimizer(LEARNING_RATE),
                replicas_to_aggregate=workers, total_num_replicas=workers)
            with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
                train = opt.minimize(loss, global_step=step)
        sess = tf1.train.MonitoredTrainingSession(
            master=server.target, is_chief=(index == 0),
            hooks=[opt.make_session_run_hook(index == 0)],
            config=config_proto(spec["threads"]), save_checkpoint_secs=None,
            save_summaries_steps=None, save_summaries_secs=None, log_step_count_steps=0)
    return sess, [train, loss]


def serve(sessions):
    """Answers run commands from stdin until stop; ``sessions`` maps a mode
    to (session, fetches)."""
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("stop"):
            break
        sess, fetches = sessions[command["mode"]]
        t0 = time.perf_counter()
        for _ in range(command["steps"]):
            _, loss = sess.run(fetches)
        reply({"seconds": time.perf_counter() - t0, "loss": float(loss)})


def main(spec):
    """Builds this task's graphs, reports ready, serves commands."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.compat.v1.disable_eager_execution()  # graph mode in every thread (MTS's too)
    role, threads = spec["role"], spec["threads"]
    t0 = time.perf_counter()
    behavior = "v2" if tf.compat.v1.resource_variables_enabled() else "v1"
    if role == "single":
        sessions, counts = {}, {}
        for mode, task_spec in (("local", spec), ("local224", spec.get("spec224"))):
            if task_spec:
                graph, ops, init, counts[mode] = local_graph(dict(spec, **task_spec),
                                                             "/cpu:0", 1)
                sessions[mode] = (tf.compat.v1.Session(graph=graph,
                                                       config=config_proto(threads)),
                                  ops["local"])
                sessions[mode][0].run(init)
        reply({"ready": time.perf_counter() - t0, "params": counts["local"],
               "params224": counts.get("local224"), "behavior": behavior})
        serve(sessions)
        return
    tf_config = json.loads(os.environ["TF_CONFIG"])
    cluster = tf.train.ClusterSpec(tf_config["cluster"])
    index = tf_config["task"]["index"]
    leader = "/job:worker/replica:0/task:0"
    server = tf.distribute.Server(cluster, job_name=role, task_index=index,
                                  config=config_proto(threads, leader), start=True)
    if role == "ps":
        reply({"ready": time.perf_counter() - t0})
        server.join()
        return
    spec = dict(spec, index=index)
    graph, ops, init, params = local_graph(
        spec, "/job:worker/task:%d" % index, cluster.num_tasks("worker"))
    sess = tf.compat.v1.Session(server.target, graph=graph, config=config_proto(
        threads, leader, "/job:worker/task:%d" % index))
    sess.run(init)
    sessions = {mode: (sess, fetches) for mode, fetches in ops.items()}
    if "ps" in tf_config["cluster"]:
        sessions["ps"] = ps_session(spec, server, cluster, index)
    reply({"ready": time.perf_counter() - t0, "params": params, "behavior": behavior})
    serve(sessions)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main(json.loads(sys.argv[1]))
