"""Restores train.py's checkpoint and reports accuracy, as a TF1 script did.

Twice: with tf.contrib.framework.assign_from_checkpoint_fn and
tf.contrib.metrics.streaming_accuracy in a plain session, and with
tf.contrib.training.evaluate_once.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import numpy as np
import tensorflow.compat.v1 as tf
tf.disable_v2_behavior()
import slim_attention
slim_attention.install_contrib_alias()

import model  # reads tf.contrib.framework.arg_scope at import

flags = tf.app.flags
flags.DEFINE_string('train_dir', None, 'Where train.py wrote its checkpoints.')
FLAGS = flags.FLAGS


def build(images, labels):
  with tf.contrib.framework.arg_scope(model.net_arg_scope(is_training=False)):
    logits = model.net(tf.constant(images))
  predictions = tf.argmax(logits, 1)
  return predictions, tf.contrib.metrics.streaming_accuracy(
      predictions, tf.constant(labels))


def main(_):
  images, labels = model.make_data(128, seed=1)  # held out: another seed
  checkpoint = tf.train.latest_checkpoint(FLAGS.train_dir)

  with tf.Graph().as_default():
    predictions, (accuracy, update_op) = build(images, labels)
    variables = tf.contrib.framework.get_model_variables()
    init_fn = tf.contrib.framework.assign_from_checkpoint_fn(checkpoint, variables)
    with tf.Session() as sess:
      sess.run(tf.local_variables_initializer())
      init_fn(sess)
      restored = all(
          np.array_equal(sess.run(v), tf.contrib.framework.load_variable(
              checkpoint, v.op.name)) for v in variables)
      predicted, _ = sess.run([predictions, update_op])
      print('ACCURACY: %f' % sess.run(accuracy))
    print('NUMPY_ACCURACY: %f' % np.mean(predicted == labels))
    print('RESTORED: %s %d' % (restored, len(variables)))

  with tf.Graph().as_default():
    tf.train.get_or_create_global_step()  # in the checkpoint; evaluate_once restores it
    _, (accuracy, update_op) = build(images, labels)
    final = tf.contrib.training.evaluate_once(
        checkpoint, eval_ops=update_op, final_ops={'accuracy': accuracy},
        hooks=[tf.contrib.training.StopAfterNEvalsHook(1)])
    print('EVALUATE_ONCE_ACCURACY: %f' % final['accuracy'])


if __name__ == '__main__':
  flags.mark_flag_as_required('train_dir')
  tf.app.run(main)
