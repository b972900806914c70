"""slim_attention.distributed: the TF_CONFIG helper and the two cluster repairs,
checked in this process against one in-process gRPC server."""
import json
import threading
import time

import pytest
import tensorflow as tf

import slim_attention as slim
from slim_attention import distributed

tf1 = tf.compat.v1


@pytest.fixture
def server():
    """An in-process gRPC server of the test's own, so no queue or variable
    state carries over (it lives as long as the test process)."""
    return tf.distribute.Server.create_local_server()


def test_repairs_are_installed_once_on_import():
    assert slim.distributed is distributed
    assert distributed.apply() == []  # import slim_attention already installed both
    from tensorflow.python.training import session_manager
    assert session_manager.SessionManager.wait_for_session._slim_attention_repair


def test_cluster_from_tf_config(monkeypatch):
    spec = {'worker': ['127.0.0.1:1', '127.0.0.1:2'], 'ps': ['127.0.0.1:3']}
    monkeypatch.setenv('TF_CONFIG', json.dumps(
        {'cluster': spec, 'task': {'type': 'worker', 'index': 1}}))
    config = distributed.cluster_from_tf_config()
    assert config.cluster_spec.as_dict() == spec
    assert (config.job_name, config.task_index) == ('worker', 1)
    assert not config.is_chief
    assert (config.num_replicas, config.num_ps_tasks) == (2, 1)
    assert config.worker_device == '/job:worker/task:1'
    worker0 = distributed.cluster_from_tf_config(
        {'cluster': spec, 'task': {'type': 'worker', 'index': 0}})
    assert worker0.is_chief
    with_chief = dict(spec, chief=['127.0.0.1:4'])
    assert not distributed.cluster_from_tf_config(
        {'cluster': with_chief, 'task': {'type': 'worker', 'index': 0}}).is_chief
    chief = distributed.cluster_from_tf_config(
        {'cluster': with_chief, 'task': {'type': 'chief', 'index': 0}})
    assert chief.is_chief and chief.num_replicas == 3


@pytest.mark.parametrize('value, message', [
    (None, 'TF_CONFIG is not set'),
    ('{"cluster"', 'TF_CONFIG is not valid JSON'),
    ('[]', 'TF_CONFIG: the value is'),
    ('{"task": {"type": "worker"}}', 'TF_CONFIG: cluster is None'),
    ('{"cluster": {"worker": "h:1"}, "task": {"type": "worker"}}',
     r"cluster\['worker'\] is 'h:1'; expected a non-empty list"),
    ('{"cluster": {"boss": ["h:1"]}, "task": {"type": "boss"}}', 'cluster job name is'),
    ('{"cluster": {"ps": ["h:1"]}, "task": {"type": "ps"}}', "a 'worker' or 'chief' job"),
    ('{"cluster": {"worker": ["h:1"]}}', 'TF_CONFIG: task is None'),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "ps"}}', "task type is 'ps'"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 1}}',
     r'task index is 1; expected an integer in \[0, 1\)'),
])
def test_cluster_from_tf_config_errors(monkeypatch, value, message):
    monkeypatch.delenv('TF_CONFIG', raising=False)
    if value is not None:
        monkeypatch.setenv('TF_CONFIG', value)
    with pytest.raises(ValueError, match=message):
        distributed.cluster_from_tf_config()


def test_non_chief_starts_as_soon_as_the_chief_initialised(server, graph):
    """wait_for_session returns within a second of the variables' initialisation,
    not after SessionManager's 30 s recovery_wait_secs."""
    variable = tf1.get_variable('v', initializer=3.0)
    manager = tf1.train.SessionManager(
        ready_op=tf1.report_uninitialized_variables(), graph=graph)
    assert manager._recovery_wait_secs == 30

    def chief():
        time.sleep(0.5)
        with tf1.Session(server.target, graph=graph) as sess:
            sess.run(variable.initializer)

    thread = threading.Thread(target=chief)
    start = time.monotonic()
    thread.start()
    sess = manager.wait_for_session(server.target, max_wait_secs=60)
    waited = time.monotonic() - start
    thread.join()
    assert 0.5 <= waited < 5, waited
    assert sess.run(variable) == 3.0
    sess.close()
    with pytest.raises(tf.errors.DeadlineExceededError,
                       match='Session was not ready after waiting 1 secs'):
        tf1.train.SessionManager(
            ready_op=tf1.report_uninitialized_variables(
                [tf1.get_variable('never_initialised', initializer=1.0)]),
            graph=graph).wait_for_session(server.target, max_wait_secs=1)


def _sync_optimizer():
    """A 2-replica SyncReplicasOptimizer whose gradients were applied once."""
    weights = tf1.get_variable('w', initializer=[1.0, 2.0])
    global_step = tf1.train.get_or_create_global_step()
    optimizer = tf1.train.SyncReplicasOptimizer(
        tf1.train.GradientDescentOptimizer(0.1), replicas_to_aggregate=2,
        total_num_replicas=2)
    optimizer.apply_gradients(optimizer.compute_gradients(tf.reduce_sum(weights ** 2)),
                              global_step=global_step)
    return optimizer


def test_sync_chief_stops_without_the_grace_period(server, graph):
    """The chief's SyncReplicasOptimizer queue runner, blocked on gradients no
    worker sends, no longer holds Supervisor.stop for 120 s, and its thread
    ends with the session."""
    optimizer = _sync_optimizer()
    runner = optimizer.get_chief_queue_runner()
    assert optimizer.get_chief_queue_runner() is runner
    assert runner.enqueue_ops and runner.cancel_op is not None
    init_tokens = optimizer.get_init_tokens_op()
    supervisor = tf1.train.Supervisor(graph=graph, is_chief=True, logdir=None,
                                      local_init_op=optimizer.chief_init_op,
                                      ready_for_local_init_op=optimizer.ready_for_local_init_op)
    start = time.monotonic()
    with supervisor.managed_session(server.target) as sess:
        threads = supervisor.start_queue_runners(sess, [runner])
        sess.run(init_tokens)
        time.sleep(0.3)  # the runner is now blocked waiting for 2 gradients
        assert all(thread.is_alive() for thread in threads)
        supervisor.stop()
    assert time.monotonic() - start < 20
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive(), thread.name


def test_sync_chief_monitored_session_closes_without_the_grace_period(server, graph):
    """The same through the optimizer's MonitoredTrainingSession hook."""
    optimizer = _sync_optimizer()
    start = time.monotonic()
    with tf1.train.MonitoredTrainingSession(
            master=server.target, is_chief=True,
            hooks=[optimizer.make_session_run_hook(True)]) as sess:
        time.sleep(0.3)  # the hook's chief queue runner is blocked
        assert not sess.should_stop()
    assert time.monotonic() - start < 20
