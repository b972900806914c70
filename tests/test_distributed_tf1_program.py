"""A TF1 slim program trains on a local 1 ps + 2 worker cluster, unchanged.

``tests/tf1_programs/distributed/train_replicas.py`` is the TF1 way of
training on several machines: ``tf.train.Server``, ``replica_device_setter``
(or research/slim's ``model_deploy`` clones), ``SyncReplicasOptimizer`` and
``slim.learning.train(..., sync_optimizer=..., master=server.target,
is_chief=...)``, on the ``research_slim`` program's colors dataset (here
8x8 images, written by the test) and nets. ``vgg_patch.cluster`` starts its three processes on
127.0.0.1; each test checks the run trained to its step count, that only the
chief wrote files, that no process stalled (the 30 s readiness sleep, the
120 s stop grace period) and that none outlived the run.
"""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from test_tf1_programs import REPO, RESEARCH_SLIM
from vgg_patch import cluster

PROGRAM = os.path.join(REPO, 'tests', 'tf1_programs', 'distributed', 'train_replicas.py')
STEPS = 6
# Seconds from the chief's last line to every process's exit: the 120 s stop
# grace period is what this bounds.
MAX_SECS_AFTER_TRAINING = 15
# Whole run, start-up (three TensorFlow imports on 2 shared cores) included.
TIMEOUT_SECS = 150


class TimedOutput(object):
    """A text stream recording when each merged, prefixed line arrived."""

    def __init__(self):
        self.lines = []

    def write(self, text):
        for line in text.splitlines():
            name, rest = line[1:].split('] ', 1)
            self.lines.append((time.monotonic(), name, rest))

    def flush(self):
        pass

    def of(self, name):
        return [rest for _, name_, rest in self.lines if name_ == name]

    def last_time(self, name, pattern):
        return max(t for t, name_, rest in self.lines
                   if name_ == name and re.search(pattern, rest))


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO, env.get('PYTHONPATH')]))
    return env


def _example(png, label):
    feature = {'image/encoded': [png], 'image/format': [b'png'],
               'image/class/label': [label], 'image/height': [8], 'image/width': [8]}
    return tf.train.Example(features=tf.train.Features(feature={
        key: tf.train.Feature(bytes_list=tf.train.BytesList(value=value))
        if isinstance(value[0], bytes) else
        tf.train.Feature(int64_list=tf.train.Int64List(value=value))
        for key, value in feature.items()}))


@pytest.fixture(scope='module')
def colors_dir(module_tmp_path):
    """research_slim's colors dataset (train: 12 records, validation: 6) at
    8x8: noise around red, green or blue, the label being the colour."""
    folder = str(module_tmp_path / 'colors')
    os.mkdir(folder)
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [8, 8, 3])
        encoded = tf.io.encode_png(image)
        with tf.compat.v1.Session() as sess:
            for split, size in (('train', 12), ('validation', 6)):
                with tf.io.TFRecordWriter(os.path.join(
                        folder, 'colors_%s_00000-of-00001.tfrecord' % split)) as writer:
                    for i in range(size):
                        pixels = rng.uniform(0, 80, (8, 8, 3))
                        pixels[:, :, i % 3] += 150
                        png = sess.run(encoded, {image: pixels.astype(np.uint8)})
                        writer.write(_example(png, i % 3).SerializeToString())
    return folder


def _train_on_cluster(train_dir, colors_dir, *flags, **launch):
    output = TimedOutput()
    start = time.monotonic()
    result = cluster.run_cluster(
        [sys.executable, PROGRAM, '--train_dir=' + train_dir,
         '--dataset_dir=' + colors_dir, '--max_number_of_steps=%d' % STEPS] + list(flags),
        workers=2, ps=1, env=_env(), output=output, timeout=TIMEOUT_SECS, **launch)
    end = time.monotonic()
    log = '\n'.join('[%s] %s' % line[1:] for line in output.lines)
    assert result.returncode == 0, '%s\n%s' % (result.message, log[-6000:])
    for pid in result.pids.values():  # every task's process is gone (and reaped)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert dict(result.returncodes) == {'ps 0': -signal.SIGTERM, 'worker 0': 0,
                                        'worker 1': 0}
    # Both workers trained (a synchronous step needs both); the chief alone wrote.
    for name in ('worker 0', 'worker 1'):
        assert any(re.match(r'INFO:tensorflow:global step \d+: loss = ', line)
                   for line in output.of(name)), log[-6000:]
        # The 30 s readiness sleep never started (TF logs this line before it).
        assert not [l for l in output.of(name) if 'Waiting for model to be ready' in l]
    assert any('Saving checkpoint to path' in line for line in output.of('worker 0'))
    assert not [line for line in output.of('worker 1')
                if re.search('Saving checkpoint|Recording summary|Finished training', line)]
    finished = output.last_time('worker 0', 'Finished training! Saving model to disk')
    assert end - finished < MAX_SECS_AFTER_TRAINING, (end - finished, log[-3000:])
    checkpoint = tf.train.latest_checkpoint(train_dir)
    assert checkpoint is not None and checkpoint.endswith('model.ckpt-%d' % STEPS)
    assert tf.train.load_variable(checkpoint, 'global_step') == STEPS
    assert len([f for f in os.listdir(train_dir) if f.startswith('events.out')]) == 1
    return checkpoint, end - start


def test_sync_replicas_with_replica_device_setter_from_tf_config(tmp_path, colors_dir):
    """replica_device_setter + slim.learning.train(sync_optimizer=...); the
    program reads its cluster from TF_CONFIG; another program restores the run."""
    train_dir = str(tmp_path / 'train')
    checkpoint, _ = _train_on_cluster(train_dir, colors_dir)
    names = dict(tf.train.list_variables(checkpoint))
    assert names['CifarNet/logits/weights'] == [64, 3]
    # research_slim's eval_image_classifier.py restores the run in a process of its own.
    proc = subprocess.run(
        [sys.executable, 'eval_image_classifier.py', '--checkpoint_path=' + train_dir,
         '--eval_dir=' + str(tmp_path / 'eval'), '--dataset_split_name=validation',
         '--dataset_dir=' + colors_dir, '--model_name=cifarnet',
         '--preprocessing_name=inception_v1', '--eval_image_size=8', '--batch_size=2',
         '--num_preprocessing_threads=1'],
        cwd=RESEARCH_SLIM, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r'^global_step: %d$' % STEPS, proc.stdout, re.M), proc.stdout
    assert re.search(r'^eval/Accuracy: [0-9.]+$', proc.stdout, re.M), proc.stdout


def test_model_deploy_clones_with_replicas_from_tf1_flags(tmp_path, colors_dir):
    """research/slim's model_deploy: 2 clones per worker on CPU, 2 replicas,
    variables on the ps; the cluster comes from TF1's four flags."""
    train_dir = str(tmp_path / 'train')
    _train_on_cluster(train_dir, colors_dir, '--num_clones=2', use_tf1_flags=True)
    with open(os.path.join(train_dir, 'graph.pbtxt')) as f:
        graph = f.read()
    assert 'name: "clone_1/CifarNet/logits/' in graph
    assert 'device: "/job:ps/task:0/device:CPU:0"' in graph
    assert 'device: "/job:worker/task:0/device:CPU:0"' in graph
