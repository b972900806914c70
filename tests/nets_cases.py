"""Shared cases of the tests/test_nets_*.py files: the blocks, the papers'
parameter totals, and small helpers that build a network in a graph of its own.
"""
import numpy as np
import tensorflow as tf
import tf_slim.nets as tf_slim_nets

import slim_attention as slim
from slim_attention import nets
from slim_attention.nets import resnet_v1
from slim_attention.nets import resnet_v2

tf1 = tf.compat.v1

BLOCKS = ('se', 'cbam', 'sam', 'gc', 'eca', 'nl')

RESNETS = {'v1': (resnet_v1, tf_slim_nets.resnet_v1),
           'v2': (resnet_v2, tf_slim_nets.resnet_v2)}
"""version -> (slim_attention's module, tf-slim's module)."""

# Trainable parameters each block adds to tf-slim's resnet_v1_50 and
# resnet_v2_50 at 1000 classes (issue 15; the papers' official configurations).
RESNET_50_TOTALS = {'se': 2530992, 'cbam': 2532592, 'gc': 2521741, 'eca': 80,
                    'sam': 1600, 'nl': 7358464}


def count(variables):
    """Number of scalars in ``variables``."""
    return sum(int(np.prod(v.shape.as_list())) for v in variables)


def per_unit(block, channels, kernel_size=7, eca_kernel=None):
    """Parameters one block adds at ``channels`` (the blocks' documented formulas)."""
    p = max(1, channels // 16)
    se = 2 * channels * p + p + channels
    return {'se': se, 'cbam': se + kernel_size * kernel_size * 2 + 2,
            'sam': kernel_size * kernel_size * 2 + 2,
            'gc': 2 * channels * p + 3 * p + 2 * channels + 1,
            'eca': eca_kernel,
            'nl': 4 * channels * (channels // 2) + 3 * (channels // 2)
                  + 3 * channels}[block]


def build(fn, size, num_classes=1000, batch=2, arg_scope=None, **kwargs):
    """Builds ``fn(images, num_classes, **kwargs)`` in a new graph.

    Returns:
      A dict: graph, images, net, end_points, variables (global), base
      (global variables that are not attention variables), attention, ops
      (the ops' names and types as built, before any test adds a Saver or
      gradients).
    """
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [batch, size, size, 3], 'images')
        with slim.arg_scope(arg_scope or {}):
            net, end_points = fn(images, num_classes, **kwargs)
        attention = nets.attention_variables()
        names = {v.op.name for v in attention}
        trainable = tf1.trainable_variables()
        trainable_names = {v.op.name for v in trainable}
        return dict(graph=graph, images=images, net=net, end_points=end_points,
                    ops=[(op.name, op.type) for op in graph.get_operations()],
                    variables=tf1.global_variables(), attention=attention,
                    base=[v for v in tf1.global_variables()
                          if v.op.name not in names],
                    trainable=trainable,
                    trainable_attention=[v for v in attention
                                         if v.op.name in trainable_names])


def session():
    """A session without grappler's rewrites (small graphs run once: faster)."""
    from tensorflow.core.protobuf import rewriter_config_pb2
    config = tf1.ConfigProto(graph_options=tf1.GraphOptions(
        rewrite_options=rewriter_config_pb2.RewriterConfig(
            disable_meta_optimizer=True)))
    return tf1.Session(config=config)


def tiny_blocks(block_fn):
    """Three one-unit blocks: every default stage of every block (gc: 2-3,
    nl: 2-3, eca: kernels 3, 5, 5) at a fraction of a ResNet-50's ops."""
    return [block_fn('block1', 4, 1, 1), block_fn('block2', 8, 1, 2),
            block_fn('block3', 16, 1, 2)]


def save_all(path):
    """Initialises the default graph's variables, saves them all (Saver V2,
    no meta graph) and returns their values by name."""
    saver = tf1.train.Saver(write_version=tf1.train.SaverDef.V2)
    with session() as sess:
        sess.run(tf1.global_variables_initializer())
        saver.save(sess, path, write_meta_graph=False)
        variables = tf1.global_variables()
        return dict(zip([v.op.name for v in variables], sess.run(variables)))


def signature(variables):
    """``[(name, shape)]`` of ``variables``."""
    return [(v.op.name, v.shape.as_list()) for v in variables]


def train_step_moves_loss(case, labels_count, learning_rate, seed=0):
    """Runs one gradient-descent step (with UPDATE_OPS) on a random batch.

    Returns:
      (loss before, loss after, the attention variables' gradients (tensors),
      how many attention variables the step changed, the largest absolute
      attention gradient before the step).
    """
    with case['graph'].as_default():
        batch = case['images'].shape.as_list()[0]
        logits = tf.reshape(case['net'], [batch, -1])
        labels = tf.constant(np.arange(batch) % labels_count)
        loss = tf1.losses.sparse_softmax_cross_entropy(labels, logits)
        grads = tf1.gradients(loss, case['trainable_attention'])
        train_op = slim.learning.create_train_op(
            loss, tf1.train.GradientDescentOptimizer(learning_rate))
        rng = np.random.RandomState(seed)
        feed = {case['images']: rng.uniform(
            0, 1, case['images'].shape.as_list()).astype(np.float32)}
        with session() as sess:
            sess.run(tf1.global_variables_initializer())
            before_vars = sess.run(case['attention'])
            largest = max(float(np.abs(g).max())
                          for g in sess.run(grads, feed)) if grads else 0.0
            before = sess.run(train_op, feed)
            after = sess.run(loss, feed)
            after_vars = sess.run(case['attention'])
        changed = sum(not np.array_equal(a, b)
                      for a, b in zip(before_vars, after_vars))
        return before, after, grads, changed, largest


_SHARED = {}


def shared(key, make):
    """``make()``, called once per test run for ``key``: the built graphs the
    tests of every tests/test_nets_*.py file read. A test that adds ops to one
    (gradients, a train op) must leave the forward graph as it was, and the
    tests that walk consumers ignore gradient ops (:func:`forward`)."""
    if key not in _SHARED:
        _SHARED[key] = make()
    return _SHARED[key]


def forward(ops):
    """``ops`` without the gradient ops a training test may have added."""
    return [op for op in ops if not op.name.startswith('gradients')]


def resnet_50(version, block):
    """resnet_v?_50 at 1000 classes, 32 px, batch 2 (``block``: an
    attention_module, None, or 'tf_slim' for tf-slim's own network)."""
    def make():
        ours, theirs = RESNETS[version]
        fn = getattr(ours if block != 'tf_slim' else theirs, 'resnet_%s_50' % version)
        kwargs = {} if block == 'tf_slim' else {'attention_module': block}
        return build(fn, 32, arg_scope=ours.resnet_arg_scope(), **kwargs)
    return shared(('resnet_50', version, block), make)


def build_tiny_resnets(version, images):
    """Six small networks (three one-unit blocks; the module's generator and
    bottleneck), one per block, scope = the block's name, 3 classes.

    Returns:
      {block: logits [N, 3]}.
    """
    ours = RESNETS[version][0]
    generator = getattr(ours, 'resnet_' + version)
    blocks = tiny_blocks(getattr(ours, 'resnet_%s_block' % version))
    with slim.arg_scope(ours.resnet_arg_scope()):
        return {b: tf.squeeze(generator(images, blocks, 3, include_root_block=False,
                                        scope=b, attention_module=b)[0], [1, 2])
                for b in BLOCKS}


def tiny_resnets(version):
    """:func:`build_tiny_resnets` on [4, 32, 32, 3] images in a graph of its own."""
    def make():
        graph = tf.Graph()
        with graph.as_default():
            images = tf1.placeholder(tf.float32, [4, 32, 32, 3], 'images')
            logits = build_tiny_resnets(version, images)
            return dict(graph=graph, images=images, logits=logits)
    return shared(('tiny_resnets', version), make)
