"""Generic evaluation script that evaluates a model using a given dataset.

research/slim's eval_image_classifier.py, migrated the same way as
train_image_classifier.py. Prints `eval/Accuracy: <value>` at the end.
"""
from __future__ import absolute_import
from __future__ import division
from __future__ import print_function

import math

import tensorflow.compat.v1 as tf
tf.disable_v2_behavior()

import slim_attention  # noqa: E402
slim_attention.install_contrib_alias()

import tensorflow.contrib.slim as slim  # noqa: E402

from datasets import dataset_factory  # noqa: E402
from nets import nets_factory  # noqa: E402
from preprocessing import preprocessing_factory  # noqa: E402

tf.app.flags.DEFINE_integer('batch_size', 100, 'The number of samples in each batch.')
tf.app.flags.DEFINE_integer('max_num_batches', None,
                            'Max number of batches to evaluate by default use all.')
tf.app.flags.DEFINE_string('master', '', 'The address of the TensorFlow master to use.')
tf.app.flags.DEFINE_string('checkpoint_path', '/tmp/tfmodel/',
                           'The directory where the model was written to or an absolute path '
                           'to a checkpoint file.')
tf.app.flags.DEFINE_string('eval_dir', '/tmp/tfmodel/', 'Directory where the results are saved to.')
tf.app.flags.DEFINE_integer('num_preprocessing_threads', 2,
                            'The number of threads used to create the batches.')
tf.app.flags.DEFINE_string('dataset_name', 'colors', 'The name of the dataset to load.')
tf.app.flags.DEFINE_string('dataset_split_name', 'validation', 'The name of the train/test split.')
tf.app.flags.DEFINE_string('dataset_dir', None, 'The directory where the dataset files are stored.')
tf.app.flags.DEFINE_string('model_name', 'resnet_v1_50', 'The name of the architecture to evaluate.')
tf.app.flags.DEFINE_string('attention_module', None,
                           'None, "se_block" or "cbam_block" (in every bottleneck).')
tf.app.flags.DEFINE_string('preprocessing_name', None,
                           'The preprocessing; None means the model_name.')
tf.app.flags.DEFINE_integer('eval_image_size', None, 'Eval image size')

FLAGS = tf.app.flags.FLAGS


def main(_):
  if not FLAGS.dataset_dir:
    raise ValueError('You must supply the dataset directory with --dataset_dir')

  tf.logging.set_verbosity(tf.logging.INFO)
  with tf.Graph().as_default():
    tf_global_step = slim.get_or_create_global_step()

    dataset = dataset_factory.get_dataset(
        FLAGS.dataset_name, FLAGS.dataset_split_name, FLAGS.dataset_dir)

    network_fn = nets_factory.get_network_fn(
        FLAGS.model_name, num_classes=dataset.num_classes, is_training=False,
        attention_module=FLAGS.attention_module)

    provider = slim.dataset_data_provider.DatasetDataProvider(
        dataset,
        shuffle=False,
        common_queue_capacity=2 * FLAGS.batch_size,
        common_queue_min=FLAGS.batch_size)
    [image, label] = provider.get(['image', 'label'])

    preprocessing_name = FLAGS.preprocessing_name or FLAGS.model_name
    image_preprocessing_fn = preprocessing_factory.get_preprocessing(
        preprocessing_name, is_training=False)
    eval_image_size = FLAGS.eval_image_size or network_fn.default_image_size
    image = image_preprocessing_fn(image, eval_image_size, eval_image_size)

    images, labels = tf.train.batch(
        [image, label],
        batch_size=FLAGS.batch_size,
        num_threads=FLAGS.num_preprocessing_threads,
        capacity=5 * FLAGS.batch_size)

    logits, _ = network_fn(images)
    variables_to_restore = slim.get_variables_to_restore()

    predictions = tf.argmax(logits, 1)
    labels = tf.squeeze(labels)

    # Define the metrics:
    names_to_values, names_to_updates = slim.metrics.aggregate_metric_map({
        'Accuracy': slim.metrics.streaming_accuracy(predictions, labels),
        'Recall_2': slim.metrics.streaming_recall_at_k(logits, labels, 2),
        'tf_metrics_accuracy': tf.metrics.accuracy(labels, predictions),
    })

    # Print the summaries to screen.
    for name, value in names_to_values.items():
      summary_name = 'eval/%s' % name
      op = tf.summary.scalar(summary_name, value, collections=[])
      op = tf.Print(op, [value], summary_name)
      tf.add_to_collection(tf.GraphKeys.SUMMARIES, op)

    if FLAGS.max_num_batches:
      num_batches = FLAGS.max_num_batches
    else:
      # This ensures that we make a single pass over all of the data.
      num_batches = math.ceil(dataset.num_samples / float(FLAGS.batch_size))

    if tf.gfile.IsDirectory(FLAGS.checkpoint_path):
      checkpoint_path = tf.train.latest_checkpoint(FLAGS.checkpoint_path)
    else:
      checkpoint_path = FLAGS.checkpoint_path

    tf.logging.info('Evaluating %s' % checkpoint_path)

    names = sorted(names_to_values)
    values = slim.evaluation.evaluate_once(
        master=FLAGS.master,
        checkpoint_path=checkpoint_path,
        logdir=FLAGS.eval_dir,
        num_evals=num_batches,
        eval_op=list(names_to_updates.values()),
        final_op=[names_to_values[name] for name in names] + [tf_global_step],
        variables_to_restore=variables_to_restore)
    for name, value in zip(names, values):
      print('eval/%s: %.4f' % (name, value))
    print('global_step: %d' % values[-1])


if __name__ == '__main__':
  tf.app.run()
