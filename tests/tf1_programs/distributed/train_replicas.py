r"""Synchronous data-parallel training of a slim model on a ps/worker cluster.

A TF1 program of the kind research/slim's users ran on a cluster
(``mnist_replica.py``, inception's ``distributed_train``, research/slim's
``train_image_classifier.py --sync_replicas``): every process runs the same
command; ``--job_name=ps`` tasks serve the variables, ``--job_name=worker``
tasks build the graph under ``replica_device_setter`` (or ``model_deploy``'s
clones), wrap the optimizer in ``SyncReplicasOptimizer`` and call
``slim.learning.train(..., sync_optimizer=..., master=server.target,
is_chief=...)``. It reuses the datasets, nets, preprocessing and deployment
packages of ``../research_slim``.

The only lines that are not TF1 are the import of ``slim_attention`` and, for
clusters given by ``TF_CONFIG`` rather than by the four flags,
``slim.distributed.cluster_from_tf_config()``.

  python train_replicas.py --ps_hosts=h0:2222 --worker_hosts=h1:2222,h2:2222 \
      --job_name=worker --task_index=0 --train_dir=/tmp/train \
      --dataset_dir=/tmp/colors --max_number_of_steps=100
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import os
import sys

import tensorflow.compat.v1 as tf
tf.disable_eager_execution()  # graph mode in every thread, the Supervisor's too

import slim_attention as slim  # noqa: E402

slim.install_contrib_alias()
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, 'research_slim'))

from datasets import dataset_factory  # noqa: E402
from deployment import model_deploy  # noqa: E402
from nets import nets_factory  # noqa: E402
from preprocessing import preprocessing_factory  # noqa: E402

tf.app.flags.DEFINE_string('ps_hosts', '', 'Comma-separated host:port of the ps tasks.')
tf.app.flags.DEFINE_string('worker_hosts', '',
                           'Comma-separated host:port of the worker tasks; '
                           'empty: the cluster comes from TF_CONFIG.')
tf.app.flags.DEFINE_string('job_name', '', '"ps" or "worker".')
tf.app.flags.DEFINE_integer('task_index', 0, 'Index of this task within its job.')
tf.app.flags.DEFINE_string('train_dir', '/tmp/tfmodel/',
                           'Directory where checkpoints and event logs are written.')
tf.app.flags.DEFINE_string('dataset_name', 'colors', 'The name of the dataset to load.')
tf.app.flags.DEFINE_string('dataset_dir', None, 'Where the dataset files are stored.')
tf.app.flags.DEFINE_string('model_name', 'cifarnet', 'The name of the architecture to train.')
tf.app.flags.DEFINE_string('preprocessing_name', 'inception_v1', 'The preprocessing.')
tf.app.flags.DEFINE_integer('image_size', 8, 'Train image size.')
tf.app.flags.DEFINE_integer('batch_size', 4, 'Images per worker and step.')
tf.app.flags.DEFINE_integer('num_clones', 1,
                            'Model clones per worker (model_deploy); 1: '
                            'replica_device_setter and create_train_op.')
tf.app.flags.DEFINE_float('learning_rate', 0.01, 'Learning rate.')
tf.app.flags.DEFINE_integer('max_number_of_steps', 10, 'The number of global steps.')
tf.app.flags.DEFINE_integer('save_interval_secs', 600, 'Seconds between checkpoints.')
tf.app.flags.DEFINE_integer('save_summaries_secs', 600, 'Seconds between summaries.')

FLAGS = tf.app.flags.FLAGS


def _cluster():
  """Returns (ClusterSpec, job_name, task_index) from the flags or TF_CONFIG."""
  if FLAGS.worker_hosts:
    jobs = {'worker': FLAGS.worker_hosts.split(',')}
    if FLAGS.ps_hosts:
      jobs['ps'] = FLAGS.ps_hosts.split(',')
    return tf.train.ClusterSpec(jobs), FLAGS.job_name, FLAGS.task_index
  config = slim.distributed.cluster_from_tf_config()
  return config.cluster_spec, config.job_name, config.task_index


def _images_and_labels(dataset):
  """A queue-runner input pipeline, as research/slim's train_image_classifier."""
  provider = slim.dataset_data_provider.DatasetDataProvider(
      dataset, num_readers=1, common_queue_capacity=10 * FLAGS.batch_size,
      common_queue_min=2 * FLAGS.batch_size)
  image, label = provider.get(['image', 'label'])
  preprocessing_fn = preprocessing_factory.get_preprocessing(
      FLAGS.preprocessing_name, is_training=True)
  image = preprocessing_fn(image, FLAGS.image_size, FLAGS.image_size)
  images, labels = tf.train.batch([image, label], batch_size=FLAGS.batch_size,
                                  num_threads=1, capacity=4 * FLAGS.batch_size)
  return images, slim.one_hot_encoding(labels, dataset.num_classes)


def _train_op_with_setter(cluster, task_index, dataset, network_fn, optimizer):
  """The model under replica_device_setter; slim.learning.create_train_op."""
  with tf.device(tf.train.replica_device_setter(
      worker_device='/job:worker/task:%d' % task_index, cluster=cluster)):
    slim.get_or_create_global_step()
    images, labels = _images_and_labels(dataset)
    logits, _ = network_fn(images)
    slim.losses.softmax_cross_entropy(logits, labels)
    total_loss = slim.losses.get_total_loss()
    tf.summary.scalar('total_loss', total_loss)
    return slim.learning.create_train_op(total_loss, optimizer)


def _train_op_with_clones(cluster, task_index, dataset, network_fn, optimizer):
  """research/slim's model_deploy: clones on this worker, variables on the ps."""
  # model_deploy's devices name the job, not the task: this worker's task here.
  with tf.device('/job:worker/task:%d' % task_index):
    return _model_deploy_train_op(cluster, task_index, dataset, network_fn,
                                  optimizer)


def _model_deploy_train_op(cluster, task_index, dataset, network_fn, optimizer):
  config = model_deploy.DeploymentConfig(
      num_clones=FLAGS.num_clones, clone_on_cpu=True, replica_id=task_index,
      num_replicas=cluster.num_tasks('worker'),
      num_ps_tasks=cluster.num_tasks('ps'))
  with tf.device(config.variables_device()):
    global_step = slim.create_global_step()
  with tf.device(config.inputs_device()):
    images, labels = _images_and_labels(dataset)
    batch_queue = slim.prefetch_queue.prefetch_queue(
        [images, labels], capacity=2 * config.num_clones)

  def clone_fn(batch_queue):
    images, labels = batch_queue.dequeue()
    logits, end_points = network_fn(images)
    slim.losses.softmax_cross_entropy(logits, labels)
    return end_points

  clones = model_deploy.create_clones(config, clone_fn, [batch_queue])
  total_loss, grads_and_vars = model_deploy.optimize_clones(clones, optimizer)
  tf.summary.scalar('total_loss', total_loss)
  with tf.device(config.optimizer_device()):
    grad_updates = optimizer.apply_gradients(grads_and_vars,
                                             global_step=global_step)
  update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS,
                                 config.clone_scope(0)) + [grad_updates]
  with tf.control_dependencies([tf.group(*update_ops)]):
    return tf.identity(total_loss, name='train_op')


def main(_):
  if not FLAGS.dataset_dir:
    raise ValueError('You must supply the dataset directory with --dataset_dir')
  tf.logging.set_verbosity(tf.logging.INFO)
  cluster, job_name, task_index = _cluster()
  server = tf.train.Server(cluster, job_name=job_name, task_index=task_index)
  if job_name == 'ps':
    server.join()
    return
  num_workers = cluster.num_tasks('worker')
  with tf.Graph().as_default():
    dataset = dataset_factory.get_dataset(FLAGS.dataset_name, 'train',
                                          FLAGS.dataset_dir)
    network_fn = nets_factory.get_network_fn(
        FLAGS.model_name, num_classes=dataset.num_classes, is_training=True)
    optimizer = tf.train.SyncReplicasOptimizer(
        tf.train.GradientDescentOptimizer(FLAGS.learning_rate),
        replicas_to_aggregate=num_workers, total_num_replicas=num_workers)
    build = _train_op_with_clones if FLAGS.num_clones > 1 else _train_op_with_setter
    train_op = build(cluster, task_index, dataset, network_fn, optimizer)
    slim.learning.train(
        train_op, logdir=FLAGS.train_dir, master=server.target,
        is_chief=(task_index == 0), sync_optimizer=optimizer,
        number_of_steps=FLAGS.max_number_of_steps, log_every_n_steps=1,
        save_interval_secs=FLAGS.save_interval_secs,
        save_summaries_secs=FLAGS.save_summaries_secs)


if __name__ == '__main__':
  tf.app.run()
