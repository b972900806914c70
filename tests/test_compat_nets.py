"""slim.nets (vgg_19, resnet_v1_50, resnet_v2_50, inception_v3) build, run and train.

resnet and inception use batch_norm everywhere, so on TF 2.21 they failed with
tf-slim 1.1.0 alone. Each net here: forward pass (logits shape), variable
names as in the released slim checkpoints, a gradient for every trainable
variable, and a training step (gradient descent with UPDATE_OPS as control
dependencies) on one small batch, after which its loss must have fallen and the
batch-norm moving statistics must move. Inputs are each net's minimum size.
"""
import numpy as np
import pytest
import tensorflow as tf

import slim_attention as slim

tf1 = tf.compat.v1
inception, vgg = slim.nets.inception, slim.nets.vgg
resnet_v1, resnet_v2 = slim.nets.resnet_v1, slim.nets.resnet_v2

NUM_CLASSES = 3

# name: (builder, arg_scope, input size, batch, learning rate, pinned checkpoint names).
# Batch norm over 4 examples makes the initial gradients of the deep nets large
# (norm in the hundreds), so their plain gradient-descent step is 1e-5.
NETS = {
    "resnet_v1_50": (
        lambda x: resnet_v1.resnet_v1_50(x, num_classes=NUM_CLASSES, is_training=True),
        resnet_v1.resnet_arg_scope, 64, 4, 1e-5,
        ["resnet_v1_50/conv1/weights", "resnet_v1_50/conv1/BatchNorm/moving_mean",
         "resnet_v1_50/block4/unit_3/bottleneck_v1/conv3/BatchNorm/gamma",
         "resnet_v1_50/logits/biases"]),
    "resnet_v2_50": (
        lambda x: resnet_v2.resnet_v2_50(x, num_classes=NUM_CLASSES, is_training=True),
        resnet_v2.resnet_arg_scope, 64, 4, 1e-5,
        ["resnet_v2_50/conv1/biases", "resnet_v2_50/postnorm/moving_variance",
         "resnet_v2_50/block1/unit_1/bottleneck_v2/preact/beta",
         "resnet_v2_50/logits/weights"]),
    # create_aux_logits=False: the auxiliary head needs inputs larger than 75x75.
    "inception_v3": (
        lambda x: inception.inception_v3(x, num_classes=NUM_CLASSES, is_training=True,
                                         dropout_keep_prob=1.0, create_aux_logits=False),
        inception.inception_v3_arg_scope, 75, 4, 1e-5,
        ["InceptionV3/Conv2d_1a_3x3/weights",
         "InceptionV3/Mixed_7c/Branch_3/Conv2d_0b_1x1/BatchNorm/moving_mean",
         "InceptionV3/Logits/Conv2d_1c_1x1/biases"]),
    # vgg_19's fc6 is a 7x7 VALID convolution over pool5: 224x224 is its minimum.
    "vgg_19": (
        lambda x: vgg.vgg_19(x, num_classes=NUM_CLASSES, is_training=True,
                             dropout_keep_prob=1.0),
        vgg.vgg_arg_scope, 224, 1, 1e-3,
        ["vgg_19/conv1/conv1_1/weights", "vgg_19/conv5/conv5_4/biases",
         "vgg_19/fc6/weights", "vgg_19/fc8/biases"]),
}


def _run_net(name, steps=1):
    build, arg_scope, size, batch, learning_rate, pinned = NETS[name]
    rng = np.random.RandomState(0)
    images = rng.rand(batch, size, size, 3).astype(np.float32)
    labels = np.arange(batch) % NUM_CLASSES
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        inputs = tf1.placeholder(tf.float32, [batch, size, size, 3])
        targets = tf1.placeholder(tf.int64, [batch])
        with slim.arg_scope(arg_scope()):
            logits, end_points = build(inputs)
        logits = tf.reshape(logits, [batch, NUM_CLASSES])
        loss = tf1.losses.sparse_softmax_cross_entropy(targets, logits)
        trainable = tf1.trainable_variables()
        optimizer = tf1.train.GradientDescentOptimizer(learning_rate)
        grads_and_vars = optimizer.compute_gradients(loss, trainable)
        gradients = [g for g, _ in grads_and_vars]
        # The TF1 idiom: the batch-norm updates run with every training step.
        with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
            train_op = optimizer.apply_gradients(grads_and_vars)
        variables = {v.op.name: v for v in tf1.global_variables()}
        moving = [v for n, v in variables.items() if n.endswith("moving_mean")]
        feed = {inputs: images, targets: labels}
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            moving_before = sess.run(moving)
            out, first = sess.run([logits, loss], feed)
            for _ in range(steps):
                sess.run(train_op, feed)
            last = sess.run(loss, feed)
            moving_after = sess.run(moving)
    return dict(out=out, first=first, last=last, variables=variables,
                trainable=trainable, gradients=gradients, end_points=end_points,
                pinned=pinned, moving=(moving_before, moving_after), batch=batch)


def _check(result):
    assert result["out"].shape == (result["batch"], NUM_CLASSES)
    assert np.isfinite(result["out"]).all()
    for name in result["pinned"]:
        assert name in result["variables"], name
    missing = [v.op.name for v, g in zip(result["trainable"], result["gradients"])
               if g is None]
    assert missing == []  # every trainable variable is reached by the loss
    assert result["last"] < result["first"]
    before, after = result["moving"]
    if before:  # nets with batch norm: the training step ran the UPDATE_OPS
        assert any(np.abs(a - b).max() > 0 for a, b in zip(after, before))


@pytest.mark.parametrize("name", ["resnet_v1_50", "resnet_v2_50", "inception_v3"])
def test_net_forward_and_training_steps(name):
    _check(_run_net(name))


@pytest.mark.slow
def test_vgg_19_forward_and_training_step():
    result = _run_net("vgg_19")
    _check(result)
    # Published VGG-19 size: 143,667,240 parameters with 1000 classes; here the
    # last layer has NUM_CLASSES outputs instead.
    count = sum(int(np.prod(v.shape)) for v in result["trainable"])
    assert count == 143667240 - (4096 * 1000 + 1000) + (4096 * NUM_CLASSES + NUM_CLASSES)
