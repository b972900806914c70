"""A TF1 tf.contrib.slim script, migrated by changing only its import lines.

Trains a small conv net (slim.conv2d + slim.batch_norm under arg_scope, with
is_training fed through a placeholder) on a synthetic two-class problem in a
Session, saves it with a Saver, restores it into a new graph and session and
compares the restored model's predictions with the trained one's.

Usage: python examples/migrate_tf1_slim.py [CHECKPOINT_DIR]
"""
import os
import sys
import tempfile

import numpy as np
import tensorflow.compat.v1 as tf  # TF1: import tensorflow as tf
import slim_attention as slim  # TF1: slim = tf.contrib.slim


def build_model(images, is_training):
    """Two conv layers with batch norm, max pooling and a linear classifier."""
    with slim.arg_scope([slim.conv2d],
                        normalizer_fn=slim.batch_norm,
                        normalizer_params={"is_training": is_training, "decay": 0.9},
                        weights_regularizer=slim.l2_regularizer(1e-4)):
        net = slim.conv2d(images, 8, [3, 3], scope="conv1")
        net = slim.max_pool2d(net, [2, 2], scope="pool1")
        net = slim.conv2d(net, 16, [3, 3], scope="conv2")
        net = slim.flatten(net)
        return slim.fully_connected(net, 2, activation_fn=None, scope="logits")


def make_data(rng, count):
    """8x8 grey images; class 1 has a brighter top half."""
    labels = rng.randint(0, 2, size=count)
    images = rng.rand(count, 8, 8, 1).astype(np.float32) * 0.5
    images[labels == 1, :4] += 0.5
    return images, labels


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    checkpoint_dir = argv[0] if argv else tempfile.mkdtemp()
    images_np, labels_np = make_data(np.random.RandomState(0), 64)

    with tf.Graph().as_default():
        tf.set_random_seed(0)
        images = tf.placeholder(tf.float32, [None, 8, 8, 1], name="images")
        labels = tf.placeholder(tf.int64, [None], name="labels")
        is_training = tf.placeholder(tf.bool, [], name="is_training")
        logits = build_model(images, is_training)
        tf.losses.sparse_softmax_cross_entropy(labels, logits)
        total_loss = tf.losses.get_total_loss()
        correct = tf.equal(tf.argmax(logits, 1), labels)
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
        update_ops = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
        with tf.control_dependencies(update_ops):
            train_op = tf.train.AdamOptimizer(0.01).minimize(total_loss)
        saver = tf.train.Saver()

        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            train_feed = {images: images_np, labels: labels_np, is_training: True}
            for step in range(60):
                _, loss = sess.run([train_op, total_loss], train_feed)
                if step == 0:
                    print("first loss: %.4f" % loss)
            print("last loss: %.4f" % loss)
            eval_feed = {images: images_np, labels: labels_np, is_training: False}
            trained_logits, train_accuracy = sess.run([logits, accuracy], eval_feed)
            print("accuracy: %.4f" % train_accuracy)
            path = saver.save(sess, os.path.join(checkpoint_dir, "model.ckpt"))
            print("saved: %s" % path)

    with tf.Graph().as_default():
        images = tf.placeholder(tf.float32, [None, 8, 8, 1], name="images")
        logits = build_model(images, is_training=False)
        with tf.Session() as sess:
            tf.train.Saver().restore(sess, path)
            restored_logits = sess.run(logits, {images: images_np})
    print("restored max difference: %g" % np.abs(restored_logits - trained_logits).max())
    return 0


if __name__ == "__main__":
    sys.exit(main())
