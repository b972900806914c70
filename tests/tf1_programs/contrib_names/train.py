"""Trains model.net with tf.contrib.training, as a TF1 script did.

The only changes from TF1: ``import tensorflow.compat.v1 as tf``,
``tf.disable_v2_behavior()`` and ``slim_attention.install_contrib_alias()``.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import tensorflow.compat.v1 as tf
tf.disable_v2_behavior()
import slim_attention
slim_attention.install_contrib_alias()

import model  # reads tf.contrib.framework.arg_scope at import

flags = tf.app.flags
flags.DEFINE_string('train_dir', None, 'Where checkpoints and summaries go.')
flags.DEFINE_integer('max_steps', 60, 'Training steps.')
flags.DEFINE_integer('batch_size', 16, 'Examples per step.')
flags.DEFINE_float('learning_rate', 0.1, 'Momentum optimizer learning rate.')
FLAGS = flags.FLAGS


class LossHistoryHook(tf.train.SessionRunHook):
  """Records the loss of every step."""

  def __init__(self, loss):
    self._loss = loss
    self.losses = []

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(self._loss)

  def after_run(self, run_context, run_values):
    self.losses.append(run_values.results)


def main(_):
  images, labels = model.make_data(256, seed=0)
  with tf.Graph().as_default():
    global_step = tf.contrib.framework.get_or_create_global_step()
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    dataset = dataset.repeat().shuffle(256, seed=1).batch(FLAGS.batch_size)
    batch_images, batch_labels = tf.data.make_one_shot_iterator(dataset).get_next()

    with tf.contrib.framework.arg_scope(model.net_arg_scope(is_training=True)):
      logits = model.net(batch_images)
    # contrib's argument order: logits first.
    tf.contrib.losses.softmax_cross_entropy(
        logits, tf.one_hot(batch_labels, model.NUM_CLASSES))
    total_loss = tf.contrib.losses.get_total_loss()
    tf.summary.scalar('total_loss', total_loss)

    optimizer = tf.train.MomentumOptimizer(FLAGS.learning_rate, 0.9)
    train_op = tf.contrib.training.create_train_op(
        total_loss, optimizer, global_step=global_step,
        transform_grads_fn=tf.contrib.training.clip_gradient_norms_fn(5.0))
    history = LossHistoryHook(total_loss)
    final_loss = tf.contrib.training.train(
        train_op, FLAGS.train_dir,
        hooks=[tf.train.StopAtStepHook(last_step=FLAGS.max_steps),
               tf.train.NanTensorHook(total_loss), history],
        save_summaries_steps=10)

  print('FIRST_LOSS: %f' % history.losses[0])
  print('FINAL_LOSS: %f' % final_loss)
  print('STEPS: %d' % len(history.losses))
  print('CHECKPOINT: %s' % tf.train.latest_checkpoint(FLAGS.train_dir))


if __name__ == '__main__':
  flags.mark_flag_as_required('train_dir')
  tf.app.run(main)
