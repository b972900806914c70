"""vgg_patch.Vgg19 with a weights file under ``replica_device_setter``: the
variables live on a ps, the file is read in the worker that built the graph.

A TF1 user places the network on a 1 ps + 1 worker cluster on 127.0.0.1: the
ps is a process of its own (it has none of the worker's Python callbacks),
the worker is this process's in-process server. The file holds VGG19's
convolutions only (``include_top=False``, no attention: the smallest file
``Vgg19`` takes, about 80 MB, written once for the module).
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from vgg_patch import Vgg19, cluster, layout

tf1 = tf.compat.v1

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PS_SCRIPT = ('import json, sys, tensorflow as tf\n'
             'spec = tf.train.ClusterSpec(json.loads(sys.argv[1]))\n'
             'tf.distribute.Server(spec, "ps", 0, start=True).join()\n')
CONV_SHAPES = {name: shapes for name, shapes in layout.LAYER_SHAPES.items()
               if name.startswith('conv')}
# Bounds every call into the cluster (the ps's start-up included).
TIMEOUT_MS = 90000


@pytest.fixture(scope='module')
def npy(tmp_path_factory):
    return layout.write_synthetic_npy(str(tmp_path_factory.mktemp('ps') / 'conv.npy'),
                                      shapes=CONV_SHAPES)


def _build(npy):
    with tf1.device(tf1.train.replica_device_setter(
            ps_tasks=1, worker_device='/job:worker/task:0')):
        vgg = Vgg19(npy, attention=None, include_top=False)
        vgg.build(tf1.placeholder(tf.float32, [1, 32, 32, 3]))
    return vgg


def test_file_read_ops_run_on_the_worker_not_the_ps(npy, graph):
    """The graph alone (no cluster): a read op colocated with its ps variable
    would run in the ps process, which has no such Python callback."""
    vgg = _build(npy)
    assert {v.device for v in vgg.var_dict.values()} == {'/job:ps/task:0'}
    reads = [op for op in graph.get_operations() if op.type in ('PyFunc', 'PyFuncStateless')]
    assert len(reads) == 2 * len(CONV_SHAPES)
    for op in reads:
        assert op.device == '/job:worker/task:0', op.name
        assert not op.colocation_groups() or op.colocation_groups() == [
            ('loc:@' + op.name).encode()], (op.name, op.colocation_groups())


def test_variables_on_the_ps_hold_the_file_s_arrays(npy, graph):
    ps_port, worker_port = cluster.free_ports(2)
    spec = {'ps': ['127.0.0.1:%d' % ps_port], 'worker': ['127.0.0.1:%d' % worker_port]}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO, env.get('PYTHONPATH')]))
    ps = subprocess.Popen([sys.executable, '-c', PS_SCRIPT, json.dumps(spec)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        server = tf.distribute.Server(tf.train.ClusterSpec(spec), 'worker', 0, start=True)
        vgg = _build(npy)
        config = tf1.ConfigProto(operation_timeout_in_ms=TIMEOUT_MS)
        with tf1.Session(server.target, config=config) as sess:
            sess.run(tf1.global_variables_initializer())
            values = sess.run({key: var for key, var in vgg.var_dict.items()})
        assert ps.poll() is None  # the ps served the whole time
    finally:
        os.killpg(ps.pid, signal.SIGKILL)
        ps.wait(timeout=30)
    assert len(values) == 2 * len(CONV_SHAPES)
    for (name, index), value in values.items():
        np.testing.assert_array_equal(
            value, layout.synthetic_array(name, index, shapes=CONV_SHAPES),
            err_msg='%s %d' % (name, index))
