"""Generic training script that trains a model using a given dataset.

research/slim's train_image_classifier.py as a TF1 user migrates it: the
import line is `import tensorflow.compat.v1 as tf`, then
`tf.disable_v2_behavior()` and `slim_attention.install_contrib_alias()`;
everything else is TF1 code (`tf.contrib.slim`, queue runners, Supervisor).

  python train_image_classifier.py --train_dir=/tmp/train \
      --dataset_name=colors --dataset_split_name=train \
      --dataset_dir=/tmp/colors --model_name=resnet_v1_50 \
      --attention_module=cbam_block --clone_on_cpu=True
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import tensorflow.compat.v1 as tf
tf.disable_v2_behavior()

import slim_attention  # noqa: E402
slim_attention.install_contrib_alias()

from datasets import dataset_factory  # noqa: E402
from deployment import model_deploy  # noqa: E402
from nets import nets_factory  # noqa: E402
from preprocessing import preprocessing_factory  # noqa: E402

slim = tf.contrib.slim

tf.app.flags.DEFINE_string('master', '', 'The address of the TensorFlow master.')
tf.app.flags.DEFINE_string('train_dir', '/tmp/tfmodel/',
                           'Directory where checkpoints and event logs are written.')
tf.app.flags.DEFINE_integer('num_clones', 1, 'Number of model clones to deploy.')
tf.app.flags.DEFINE_boolean('clone_on_cpu', False, 'Use CPUs to deploy clones.')
tf.app.flags.DEFINE_integer('num_readers', 2, 'The number of parallel readers.')
tf.app.flags.DEFINE_integer('num_preprocessing_threads', 2,
                            'The number of threads used to create the batches.')
tf.app.flags.DEFINE_integer('log_every_n_steps', 1,
                            'The frequency with which logs are printed.')
tf.app.flags.DEFINE_integer('save_summaries_secs', 600,
                            'The frequency with which summaries are saved, in seconds.')
tf.app.flags.DEFINE_integer('save_interval_secs', 600,
                            'The frequency with which the model is saved, in seconds.')
tf.app.flags.DEFINE_integer('task', 0, 'Task id of the replica running the training.')
tf.app.flags.DEFINE_float('weight_decay', 0.00004, 'The weight decay on the model weights.')
tf.app.flags.DEFINE_string('optimizer', 'momentum', '"sgd", "momentum", "adam" or "rmsprop".')
tf.app.flags.DEFINE_float('momentum', 0.9, 'The momentum for the MomentumOptimizer.')
tf.app.flags.DEFINE_float('learning_rate', 0.01, 'Initial learning rate.')
tf.app.flags.DEFINE_float('learning_rate_decay_factor', 0.94, 'Learning rate decay factor.')
tf.app.flags.DEFINE_float('num_epochs_per_decay', 2.0,
                          'Number of epochs after which learning rate decays.')
tf.app.flags.DEFINE_float('label_smoothing', 0.0, 'The amount of label smoothing.')
tf.app.flags.DEFINE_string('dataset_name', 'colors', 'The name of the dataset to load.')
tf.app.flags.DEFINE_string('dataset_split_name', 'train', 'The name of the train/test split.')
tf.app.flags.DEFINE_string('dataset_dir', None, 'Where the dataset files are stored.')
tf.app.flags.DEFINE_string('model_name', 'resnet_v1_50', 'The name of the architecture to train.')
tf.app.flags.DEFINE_string('attention_module', None,
                           'None, "se_block" or "cbam_block" (in every bottleneck).')
tf.app.flags.DEFINE_string('preprocessing_name', None,
                           'The preprocessing; None means the model_name.')
tf.app.flags.DEFINE_integer('batch_size', 32, 'The number of samples in each batch.')
tf.app.flags.DEFINE_integer('train_image_size', None, 'Train image size')
tf.app.flags.DEFINE_integer('max_number_of_steps', None, 'The maximum number of training steps.')

FLAGS = tf.app.flags.FLAGS


def _configure_learning_rate(num_samples_per_epoch, global_step):
  """Exponentially decaying learning rate, as research/slim's default."""
  decay_steps = int(num_samples_per_epoch * FLAGS.num_epochs_per_decay /
                    FLAGS.batch_size)
  return tf.train.exponential_decay(FLAGS.learning_rate, global_step,
                                    max(decay_steps, 1),
                                    FLAGS.learning_rate_decay_factor,
                                    staircase=True, name='exponential_decay_learning_rate')


def _configure_optimizer(learning_rate):
  """Configures the optimizer used for training.

  Raises:
    ValueError: if FLAGS.optimizer is not recognized.
  """
  if FLAGS.optimizer == 'sgd':
    return tf.train.GradientDescentOptimizer(learning_rate)
  if FLAGS.optimizer == 'momentum':
    return tf.train.MomentumOptimizer(learning_rate, momentum=FLAGS.momentum,
                                      name='Momentum')
  if FLAGS.optimizer == 'adam':
    return tf.train.AdamOptimizer(learning_rate)
  if FLAGS.optimizer == 'rmsprop':
    return tf.train.RMSPropOptimizer(learning_rate, decay=0.9, momentum=0.9,
                                     epsilon=1.0)
  raise ValueError('Optimizer [%s] was not recognized' % FLAGS.optimizer)


def main(_):
  if not FLAGS.dataset_dir:
    raise ValueError('You must supply the dataset directory with --dataset_dir')

  tf.logging.set_verbosity(tf.logging.INFO)
  with tf.Graph().as_default():
    deploy_config = model_deploy.DeploymentConfig(
        num_clones=FLAGS.num_clones, clone_on_cpu=FLAGS.clone_on_cpu,
        replica_id=FLAGS.task)

    # Create global_step
    with tf.device(deploy_config.variables_device()):
      global_step = slim.create_global_step()

    dataset = dataset_factory.get_dataset(
        FLAGS.dataset_name, FLAGS.dataset_split_name, FLAGS.dataset_dir)

    network_fn = nets_factory.get_network_fn(
        FLAGS.model_name, num_classes=dataset.num_classes,
        weight_decay=FLAGS.weight_decay, is_training=True,
        attention_module=FLAGS.attention_module)

    preprocessing_name = FLAGS.preprocessing_name or FLAGS.model_name
    image_preprocessing_fn = preprocessing_factory.get_preprocessing(
        preprocessing_name, is_training=True)

    # Create a dataset provider that loads data from the dataset.
    with tf.device(deploy_config.inputs_device()):
      provider = slim.dataset_data_provider.DatasetDataProvider(
          dataset,
          num_readers=FLAGS.num_readers,
          common_queue_capacity=20 * FLAGS.batch_size,
          common_queue_min=10 * FLAGS.batch_size)
      [image, label] = provider.get(['image', 'label'])

      train_image_size = FLAGS.train_image_size or network_fn.default_image_size
      image = image_preprocessing_fn(image, train_image_size, train_image_size)

      images, labels = tf.train.batch(
          [image, label],
          batch_size=FLAGS.batch_size,
          num_threads=FLAGS.num_preprocessing_threads,
          capacity=5 * FLAGS.batch_size)
      labels = slim.one_hot_encoding(labels, dataset.num_classes)
      batch_queue = slim.prefetch_queue.prefetch_queue(
          [images, labels], capacity=2 * deploy_config.num_clones)

    def clone_fn(batch_queue):
      """Allows data parallelism by creating multiple clones of network_fn."""
      images, labels = batch_queue.dequeue()
      logits, end_points = network_fn(images)
      slim.losses.softmax_cross_entropy(
          logits, labels, label_smoothing=FLAGS.label_smoothing, weights=1.0)
      return end_points

    # Gather initial summaries.
    summaries = set(tf.get_collection(tf.GraphKeys.SUMMARIES))

    clones = model_deploy.create_clones(deploy_config, clone_fn, [batch_queue])
    first_clone_scope = deploy_config.clone_scope(0)
    # Gather update_ops from the first clone. These contain, for example,
    # the updates for the batch_norm variables created by network_fn.
    update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS, first_clone_scope)

    # Add summaries for end_points.
    end_points = clones[0].outputs
    for end_point in end_points:
      x = end_points[end_point]
      summaries.add(tf.summary.histogram('activations/' + end_point, x))
      summaries.add(tf.summary.scalar('sparsity/' + end_point,
                                      tf.nn.zero_fraction(x)))
    for loss in tf.get_collection(tf.GraphKeys.LOSSES, first_clone_scope):
      summaries.add(tf.summary.scalar('losses/%s' % loss.op.name, loss))
    for variable in slim.get_model_variables():
      summaries.add(tf.summary.histogram(variable.op.name, variable))

    with tf.device(deploy_config.optimizer_device()):
      learning_rate = _configure_learning_rate(dataset.num_samples, global_step)
      optimizer = _configure_optimizer(learning_rate)
      summaries.add(tf.summary.scalar('learning_rate', learning_rate))

    total_loss, clones_gradients = model_deploy.optimize_clones(
        clones, optimizer, var_list=tf.trainable_variables())
    summaries.add(tf.summary.scalar('total_loss', total_loss))

    # Create gradient updates.
    grad_updates = optimizer.apply_gradients(clones_gradients,
                                             global_step=global_step)
    update_ops.append(grad_updates)
    update_op = tf.group(*update_ops)
    with tf.control_dependencies([update_op]):
      train_tensor = tf.identity(total_loss, name='train_op')

    summaries |= set(tf.get_collection(tf.GraphKeys.SUMMARIES, first_clone_scope))
    summary_op = tf.summary.merge(list(summaries), name='summary_op')

    slim.learning.train(
        train_tensor,
        logdir=FLAGS.train_dir,
        master=FLAGS.master,
        is_chief=(FLAGS.task == 0),
        summary_op=summary_op,
        number_of_steps=FLAGS.max_number_of_steps,
        log_every_n_steps=FLAGS.log_every_n_steps,
        save_summaries_secs=FLAGS.save_summaries_secs,
        save_interval_secs=FLAGS.save_interval_secs)


if __name__ == '__main__':
  tf.app.run()
