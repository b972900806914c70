"""Tutorial-style attention blocks, the references slim_attention is timed against.

Written the way blog posts and tutorial repositories write them for TF1: with
``tf.compat.v1.layers`` (dense, conv1d/conv2d, batch_normalization,
max_pooling2d), NHWC, one variable scope per block. Each computes the same math
as ``docs/attention.md`` describes (the benchmark checks that, with the same
weights, outputs agree), so the timing compares two implementations of one
function, not two different functions.

Bench-only code. ``tf.compat.v1.layers`` works once slim_attention is imported
(its compat layer routes it to tf-keras); before that, tf-keras' own legacy
layers are used, which are the same objects.
"""
import math

import tensorflow as tf

tf1 = tf.compat.v1


def tf1_layers():
    """``tf.compat.v1.layers`` if it works here, else tf-keras' legacy layers."""
    try:
        tf1.layers.dense  # pylint: disable=pointless-statement
        return tf1.layers
    except (AttributeError, ImportError):
        from tf_keras.api._v1.keras.__internal__ import legacy  # pylint: disable=import-outside-toplevel
        return legacy.layers


def _channels(x):
    return int(x.shape[-1])


def se_ref(x, ratio=16):
    """Squeeze-and-excitation, as in the usual TF1 tutorial."""
    layers = tf1_layers()
    c = _channels(x)
    with tf1.variable_scope(None, "se_ref"):
        squeeze = tf.reduce_mean(x, axis=[1, 2])                       # [N, C]
        excite = layers.dense(squeeze, max(1, c // ratio), activation=tf.nn.relu,
                              name="fc1")
        excite = layers.dense(excite, c, activation=tf.nn.sigmoid, name="fc2")
        return x * tf.reshape(excite, [-1, 1, 1, c])


def channel_ref(x, ratio=16):
    """CBAM's channel gate, kobiso/CBAM-tensorflow style (shared MLP by reuse)."""
    layers = tf1_layers()
    c = _channels(x)
    hidden = max(1, c // ratio)
    with tf1.variable_scope(None, "channel_ref"):
        avg_pool = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        avg_pool = layers.dense(avg_pool, hidden, activation=tf.nn.relu, name="mlp_0")
        avg_pool = layers.dense(avg_pool, c, name="mlp_1")
        max_pool = tf.reduce_max(x, axis=[1, 2], keepdims=True)
        max_pool = layers.dense(max_pool, hidden, activation=tf.nn.relu, name="mlp_0",
                                reuse=True)
        max_pool = layers.dense(max_pool, c, name="mlp_1", reuse=True)
        return x * tf.sigmoid(avg_pool + max_pool)


def spatial_ref(x, kernel_size=7):
    """CBAM's spatial gate: [max, mean] over C, k x k conv, BN, sigmoid."""
    layers = tf1_layers()
    with tf1.variable_scope(None, "spatial_ref"):
        max_pool = tf.reduce_max(x, axis=3, keepdims=True)
        avg_pool = tf.reduce_mean(x, axis=3, keepdims=True)
        concat = tf.concat([max_pool, avg_pool], axis=3)
        concat = layers.conv2d(concat, 1, kernel_size, padding="same",
                               use_bias=False, name="conv")
        concat = layers.batch_normalization(concat, training=True, epsilon=1e-5,
                                            momentum=0.99, name="bn")
        return x * tf.sigmoid(concat)


def cbam_ref(x, ratio=16, kernel_size=7):
    """CBAM: channel gate then spatial gate."""
    with tf1.variable_scope(None, "cbam_ref"):
        return spatial_ref(channel_ref(x, ratio), kernel_size)


def _layer_norm(x, epsilon=1e-5):
    """Layer norm over the last axis, written out as tutorials do."""
    c = _channels(x)
    with tf1.variable_scope("layer_norm"):
        gamma = tf1.get_variable("gamma", [c], initializer=tf1.ones_initializer())
        beta = tf1.get_variable("beta", [c], initializer=tf1.zeros_initializer())
        mean, var = tf.nn.moments(x, [-1], keepdims=True)
        return (x - mean) * tf.math.rsqrt(var + epsilon) * gamma + beta


def gc_ref(x, ratio=16):
    """Global context block (attention pooling, add fusion), GCNet's math."""
    layers = tf1_layers()
    c = _channels(x)
    hidden = max(1, c // ratio)
    with tf1.variable_scope(None, "gc_ref"):
        n = tf.shape(x)[0]
        mask = layers.conv2d(x, 1, 1, name="conv_mask")               # [N, H, W, 1]
        mask = tf.nn.softmax(tf.reshape(mask, [n, -1, 1]), axis=1)     # [N, HW, 1]
        flat = tf.reshape(x, [n, -1, c])                               # [N, HW, C]
        context = tf.matmul(mask, flat, transpose_a=True)              # [N, 1, C]
        context = tf.reshape(context, [n, 1, 1, c])
        t = layers.conv2d(context, hidden, 1, name="transform_0")
        t = tf.nn.relu(_layer_norm(t))
        t = layers.conv2d(t, c, 1, kernel_initializer=tf1.zeros_initializer(),
                          name="transform_1")
        return x + t


def eca_kernel_size(c, gamma=2, b=1):
    """ECA's adaptive kernel size (paper Eq. 12)."""
    t = int(abs((math.log2(c) + b) / gamma))
    return t if t % 2 else t + 1


def eca_ref(x, kernel_size=None):
    """Efficient channel attention: 1-D conv across the pooled channels."""
    layers = tf1_layers()
    c = _channels(x)
    k = kernel_size or eca_kernel_size(c)
    with tf1.variable_scope(None, "eca_ref"):
        y = tf.reduce_mean(x, axis=[1, 2])                             # [N, C]
        y = tf.expand_dims(y, -1)                                      # [N, C, 1]
        y = layers.conv1d(y, 1, k, padding="same", use_bias=False, name="conv")
        return x * tf.reshape(tf.sigmoid(y), [-1, 1, 1, c])


def nl_ref(x, ratio=2, subsample=False):
    """Non-local block, embedded Gaussian (input max-pooled before phi/g when
    subsampling, as the official code does)."""
    layers = tf1_layers()
    c = _channels(x)
    ci = c // ratio
    with tf1.variable_scope(None, "nl_ref"):
        shape = tf.shape(x)
        n = shape[0]
        source = layers.max_pooling2d(x, 2, 2, padding="same") if subsample else x
        theta = layers.conv2d(x, ci, 1, name="theta")
        phi = layers.conv2d(source, ci, 1, name="phi")
        g = layers.conv2d(source, ci, 1, name="g")
        theta = tf.reshape(theta, [n, -1, ci])
        phi = tf.reshape(phi, [n, -1, ci])
        g = tf.reshape(g, [n, -1, ci])
        f = tf.nn.softmax(tf.matmul(theta, phi, transpose_b=True) / math.sqrt(ci))
        y = tf.reshape(tf.matmul(f, g), [n, shape[1], shape[2], ci])
        z = layers.conv2d(y, c, 1, name="out")
        z = layers.batch_normalization(z, training=True, epsilon=1e-5, momentum=0.9,
                                       gamma_initializer=tf1.zeros_initializer(),
                                       name="bn")
        return x + z
