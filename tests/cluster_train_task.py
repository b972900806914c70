"""One task of the cluster-training tests: ``vgg19-cbam-train``'s command with a
tiny network behind the trainer's seam (a 3x3 convolution, a mean pool and a
dense layer, no dropout, so N workers must give one process's weights), run
as ``python tests/cluster_train_task.py <trainer flags>``. With
``CLUSTER_TEST_BATCH_NORM=1`` the convolution is followed by ``slim.batch_norm``
and CBAM's spatial attention (its own batch norm), both synchronised across
the workers (vgg_patch/training/sync_bn.py).

Each task trains into ``<--train-dir>/<type><index>`` (``TF_CONFIG``'s task;
``single`` without one), so a test can see which task wrote what. With
``CLUSTER_TEST_STEP_SECS`` set, each training step sleeps that long (so a test
can kill a task mid-run).
"""
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

import slim_attention as slim
from slim_attention.attention import spatial_attention
from vgg_patch.cli.train import build_parser, train_command
from vgg_patch.training.config import resolve_config
from vgg_patch.training.network import NetworkOutput


class TinyNetwork:
    export_name = "export/tiny.npz"
    run_settings = {"model": "tiny"}

    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.variables = []

    def estimate_memory(self, image_size, batch_size, optimizer):
        return 3 * 3 * 3 * 4 + 4 * self.num_classes, 1 << 20

    def _variable(self, name, shape):
        var = tf.compat.v1.get_variable(
            name, shape, initializer=tf.compat.v1.glorot_uniform_initializer(),
            collections=[tf.compat.v1.GraphKeys.GLOBAL_VARIABLES,
                         tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES,
                         tf.compat.v1.GraphKeys.MODEL_VARIABLES])
        self.variables.append(var)
        return var

    def build(self, images, is_training):
        with tf.compat.v1.variable_scope("tiny"):
            net = tf.nn.conv2d(images - 0.5, self._variable("conv", [3, 3, 3, 4]), 2,
                               "SAME")
            if os.environ.get("CLUSTER_TEST_BATCH_NORM") == "1":
                net = slim.batch_norm(net, is_training=is_training, scale=True, decay=0.8)
                net = spatial_attention(net, kernel_size=3, is_training=is_training,
                                        batch_norm_decay=0.8, zero_init_last=False)
            net = tf.reduce_mean(tf.nn.relu(net), [1, 2])
            logits = tf.matmul(net, self._variable("dense", [4, self.num_classes]))
        secs = float(os.environ.get("CLUSTER_TEST_STEP_SECS", "0"))
        if secs > 0:
            pause = tf.compat.v1.py_func(lambda: np.float32(time.sleep(secs) or 0), [],
                                         tf.float32, stateful=True)
            logits = logits + tf.cond(is_training, lambda: pause, lambda: 0.0)
        return NetworkOutput(logits=logits)

    def model_variables(self):
        return tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.MODEL_VARIABLES, "tiny/")

    def save(self, sess, path):
        values = sess.run(self.model_variables())
        np.savez(path + ".tmp.npz", *values)
        os.replace(path + ".tmp.npz", path)
        return path


def main(argv):
    task = json.loads(os.environ.get("TF_CONFIG", "null"))
    name = "%s%d" % (task["task"]["type"], task["task"].get("index", 0)) if task \
        else "single"
    at = argv.index("--train-dir") + 1
    argv = argv[:at] + [os.path.join(argv[at], name)] + argv[at + 1:]
    return train_command(argv, build_parser(), resolve_config,
                         make_network=lambda args, dataset: TinyNetwork(
                             len(dataset.class_names)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
