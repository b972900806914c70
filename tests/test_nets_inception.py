"""slim_attention.nets.inception_v1/v2/v3: tf-slim's Inceptions with attention.

Graphs are the cost here (tf-slim builds an Inception slowly), so each net is
built once per kind per run and every test reads those graphs:

* ``plain``: tf-slim's own function, with TensorFlow's ``array_ops`` put back
  in its module (no hook at all);
* ``none``: slim_attention's with ``attention_module=None``;
* one graph per block: the net with that block (scope: the block's name;
  CBAM under the network's default scope, so a tf-slim checkpoint restores
  into it as is). One graph each, not the six nets in one: every variable
  tf-slim's batch norm adds hashes all the graph's variables
  (tf_keras' legacy ``add_weight``): six nets in one graph cost far more to
  build than six graphs.

At the smallest input each net takes (v1: 193 px, its 7 x 7 VALID final pool;
v3: 107 px, the auxiliary classifier's 5 x 5 VALID pool; v2 takes 32 px, but
64 leaves its last blocks 2 x 2, so that with a batch of 4 the blocks' batch
norms normalise over more than a few values and one small step lowers the
loss), a batch of 4 and the model zoo's 1001 classes (the added parameters do
not depend on them).
"""
import contextlib
import inspect

import numpy as np
import pytest
import tensorflow as tf
import tf_slim.nets as tf_slim_nets
from tensorflow.python.ops import array_ops

import slim_attention as slim
from slim_attention import nets
from slim_attention.attention.eca import adaptive_kernel_size
from slim_attention.nets import inception

from nets_cases import BLOCKS, count, per_unit, save_all, session, signature

tf1 = tf.compat.v1

NUM_CLASSES = 1001
SIZES = {'inception_v1': 193, 'inception_v2': 64, 'inception_v3': 107}
BATCH = 4
SCOPES = {'inception_v1': 'InceptionV1', 'inception_v2': 'InceptionV2',
          'inception_v3': 'InceptionV3'}
NETS = sorted(SIZES)
# Each Mixed block's output width (tf-slim's comments; the papers' tables).
WIDTHS = {
    'inception_v1': (256, 480, 512, 512, 512, 528, 832, 832, 1024),
    'inception_v2': (256, 320, 576, 576, 576, 576, 576, 1024, 1024, 1024),
    'inception_v3': (256, 288, 288, 768, 768, 768, 768, 768, 1280, 2048, 2048),
}
NON_LOCAL = {
    'inception_v1': ('Mixed_3b', 'Mixed_3c', 'Mixed_4b', 'Mixed_4d', 'Mixed_4f'),
    'inception_v2': ('Mixed_3b', 'Mixed_3c', 'Mixed_4a', 'Mixed_4c', 'Mixed_4e'),
    'inception_v3': ('Mixed_5b', 'Mixed_5d', 'Mixed_6a', 'Mixed_6c', 'Mixed_6e'),
}
_CACHE = {}


def module_of(name):
    return getattr(nets, name)


def mixed_blocks(name):
    return module_of(name).MIXED_BLOCKS


def expected_added(name, block):
    """The block's parameters over the net's Mixed blocks (the blocks' formulas)."""
    widths = dict(zip(mixed_blocks(name), WIDTHS[name]))
    where = NON_LOCAL[name] if block == 'nl' else mixed_blocks(name)
    return sum(per_unit(block, widths[m], eca_kernel=adaptive_kernel_size(widths[m]))
               for m in where)


@contextlib.contextmanager
def unhooked(name):
    """tf-slim's module with TensorFlow's own array_ops, as tf-slim ships it."""
    module = getattr(tf_slim_nets, name)
    hooked, module.array_ops = module.array_ops, array_ops
    try:
        yield
    finally:
        module.array_ops = hooked


def _images(name):
    return tf1.placeholder(tf.float32, [BATCH, SIZES[name], SIZES[name], 3],
                           'images')


def scope_of(name, block):
    return SCOPES[name] if block == 'cbam' else block


def built(name, kind):
    """The ``plain`` or ``none`` graph of ``name``, or its graph with the block
    ``kind`` (one of BLOCKS), built once per run."""
    if (name, kind) in _CACHE:
        return _CACHE[name, kind]
    graph = tf.Graph()
    case = {'graph': graph}
    with graph.as_default(), slim.arg_scope(
            getattr(inception, name + '_arg_scope')()):
        images = case['images'] = _images(name)
        if kind == 'plain':
            with unhooked(name):
                case['net'], case['end_points'] = getattr(
                    getattr(tf_slim_nets, name), name)(images, NUM_CLASSES)
        elif kind == 'none':
            case['net'], case['end_points'] = getattr(inception, name)(
                images, NUM_CLASSES)
        else:
            tf1.set_random_seed(0)  # the training step's start: the same each run
            case['net'], case['end_points'] = getattr(inception, name)(
                images, NUM_CLASSES, dropout_keep_prob=1.0, attention_module=kind,
                scope=scope_of(name, kind))
        case['variables'] = tf1.global_variables()
        case['trainable'] = tf1.trainable_variables()
        # As built, before a test adds a Saver or gradients.
        case['ops'] = [(op.name, op.type) for op in graph.get_operations()]
    _CACHE[name, kind] = case
    return case


def relative(variables, scope):
    return [(v.op.name[len(scope):], v.shape.as_list()) for v in variables
            if v.op.name.startswith(scope + '/')]


def test_signatures_are_tf_slims_plus_the_attention_arguments():
    extra = ['attention_module', 'attention_params', 'attention_stages']
    for name in NETS:
        for fn in (name, name + '_base'):
            ours = inspect.signature(getattr(module_of(name), fn))
            theirs = inspect.signature(getattr(getattr(tf_slim_nets, name), fn))
            assert list(ours.parameters.values())[:-3] == list(
                theirs.parameters.values())
            assert list(ours.parameters)[-3:] == extra
            assert all(ours.parameters[p].default is None for p in extra)
            assert getattr(inception, fn) is getattr(module_of(name), fn)
        assert (getattr(inception, name + '_arg_scope')
                is getattr(tf_slim_nets.inception, name + '_arg_scope'))
    assert inception.inception_v3.default_image_size == 299
    assert nets.inception_v3._reduced_kernel_size_for_small_input is (
        tf_slim_nets.inception_v3._reduced_kernel_size_for_small_input)


@pytest.mark.parametrize('name', NETS)
def test_without_attention_the_graph_is_tf_slims(name):
    ours, theirs = built(name, 'none'), built(name, 'plain')
    assert signature(ours['variables']) == signature(theirs['variables'])
    assert sorted(ours['end_points']) == sorted(theirs['end_points'])
    for key, tensor in theirs['end_points'].items():
        assert ours['end_points'][key].name == tensor.name, key
    assert ours['ops'] == theirs['ops']
    with ours['graph'].as_default():
        assert nets.attention_scopes() == []


def _following(name, mixed):
    """Name fragments of what may read a Mixed block's output."""
    blocks = mixed_blocks(name)
    i = blocks.index(mixed)
    if i + 1 < len(blocks):
        # v1 max-pools between its stages (MaxPool_4a_3x3 before Mixed_4b).
        return ('/%s/' % blocks[i + 1], '/MaxPool_%sa_' % blocks[i + 1][6]) + (
            ('/AuxLogits/',) if mixed == 'Mixed_6e' else ())
    return ('/Logits/',)


def _forward(ops):
    return [op for op in ops if not op.name.startswith('gradients')]


@pytest.mark.parametrize('name', NETS)
def test_each_block_sits_after_each_mixed_concatenation(name):
    plain = built(name, 'plain')
    base = relative(plain['variables'], SCOPES[name])
    for block in BLOCKS:
        case = built(name, block)
        graph = case['graph']
        scope, block_scope = scope_of(name, block), nets.placement.SCOPES[block]
        with graph.as_default():
            outputs = tf1.get_collection(nets.ATTENTION_OUTPUTS)
            attention = nets.attention_variables(scope + '/')
        names = {v.op.name for v in attention}
        # tf-slim's variables keep their names; the block adds its formula's count.
        assert relative([v for v in case['variables'] if v.op.name not in names],
                        scope) == base, block
        trainable = [v for v in case['trainable'] if v.op.name.startswith(scope + '/')]
        assert count(trainable) - count(plain['trainable']) == expected_added(
            name, block) == count([v for v in trainable if v.op.name in names])
        where = NON_LOCAL[name] if block == 'nl' else mixed_blocks(name)
        mine = [o for o in outputs if o.aliases[0].startswith(scope + '/')]
        assert mine == outputs and [o.aliases[0] for o in mine] == [
            '%s/%s/%s' % (scope, m, block_scope) for m in where], block
        end_points = case['end_points']
        for mixed, output in zip(where, mine):
            # In: the Mixed block's concatenation, read by the block only.
            name_scope = output.op.name.split('/%s/' % block_scope)[0]
            concat = graph.get_tensor_by_name(name_scope + '/concat:0')
            assert name_scope.endswith('/' + mixed)
            assert concat.op.type == 'ConcatV2' and all(
                '/Branch_' in t.op.name for t in concat.op.inputs[:-1])
            assert all(op.name.startswith('%s/%s/' % (name_scope, block_scope))
                       for op in _forward(concat.consumers()))
            # Out: the end point, read by the next block (or the classifiers).
            assert end_points[mixed] is output
            readers = _forward(output.consumers())
            assert readers and all(any(f in op.name for f in _following(name, mixed))
                                   for op in readers), (mixed, readers)


# The README's table: trainable parameters each block adds (defaults).
TOTALS = {
    'inception_v1': {'se': 480103, 'cbam': 481003, 'sam': 900, 'gc': 486286,
                     'eca': 45, 'nl': 3036560},
    'inception_v2': {'se': 628504, 'cbam': 629504, 'sam': 1000, 'gc': 635858,
                     'eca': 50, 'nl': 2336896},
    'inception_v3': {'se': 1661620, 'cbam': 1662720, 'sam': 1100, 'gc': 1672935,
                     'eca': 59, 'nl': 3848720},
}


def test_readme_totals_are_the_formulas():
    """The built graphs check expected_added; this pins the README's figures."""
    assert {n: {b: expected_added(n, b) for b in BLOCKS} for n in NETS} == TOTALS


def test_pinned_names_of_one_mixed_block():
    with built('inception_v3', 'cbam')['graph'].as_default():
        got = signature(nets.attention_variables('InceptionV3/Mixed_5b/'))
    with built('inception_v3', 'nl')['graph'].as_default():
        nl = signature(nets.attention_variables('nl/Mixed_6a/'))
    assert got == [
        ('InceptionV3/Mixed_5b/CBAM/ChannelAttention/fc1/weights', [256, 16]),
        ('InceptionV3/Mixed_5b/CBAM/ChannelAttention/fc1/biases', [16]),
        ('InceptionV3/Mixed_5b/CBAM/ChannelAttention/fc2/weights', [16, 256]),
        ('InceptionV3/Mixed_5b/CBAM/ChannelAttention/fc2/biases', [256]),
        ('InceptionV3/Mixed_5b/CBAM/SpatialAttention/conv/weights', [7, 7, 2, 1]),
        ('InceptionV3/Mixed_5b/CBAM/SpatialAttention/BatchNorm/beta', [1]),
        ('InceptionV3/Mixed_5b/CBAM/SpatialAttention/BatchNorm/gamma', [1]),
        ('InceptionV3/Mixed_5b/CBAM/SpatialAttention/BatchNorm/moving_mean', [1]),
        ('InceptionV3/Mixed_5b/CBAM/SpatialAttention/BatchNorm/moving_variance',
         [1])]
    assert [n.split('/', 3)[3] for n, _ in nl] == [
        'theta/weights', 'theta/biases', 'phi/weights', 'phi/biases', 'g/weights',
        'g/biases', 'out/weights', 'out/biases', 'BatchNorm/beta',
        'BatchNorm/gamma', 'BatchNorm/moving_mean', 'BatchNorm/moving_variance']


@pytest.fixture(scope='module')
def model_zoo_inception_v3(module_tmp_path):
    """A checkpoint with the names, shapes and format of inception_v3.ckpt
    (tf-slim's inception_v3, 1001 classes, auxiliary classifier, Saver V2)."""
    path = str(module_tmp_path / 'inception_v3.ckpt')
    with built('inception_v3', 'plain')['graph'].as_default():
        return path, save_all(path)


def test_model_zoo_checkpoint_restores_into_every_block(model_zoo_inception_v3,
                                                         tmp_path):
    """inception_v3.ckpt into inception_v3 with CBAM by tf-slim's tools as is,
    into the other blocks' nets by a name map; then the attention graph's own
    checkpoint into a fresh inception_v3 with CBAM."""
    path, values = model_zoo_inception_v3
    stored = dict(tf1.train.list_variables(path))
    assert stored['InceptionV3/Logits/Conv2d_1c_1x1/weights'] == [1, 1, 2048, 1001]
    assert stored['InceptionV3/AuxLogits/Conv2d_2b_1x1/weights'] == [1, 1, 768, 1001]
    for block in BLOCKS:
        scope = scope_of('inception_v3', block)
        with built('inception_v3', block)['graph'].as_default():
            variables = slim.get_variables_to_restore(
                include=[scope + '/'], exclude=nets.attention_scopes(scope + '/'))
            if block == 'cbam':
                assert sorted(v.op.name for v in variables) == sorted(stored)
                init_fn = slim.assign_from_checkpoint_fn(path, variables)
            else:
                init_fn = slim.assign_from_checkpoint_fn(path, {
                    'InceptionV3' + v.op.name[len(scope):]: v for v in variables})
            attention = nets.attention_variables()
            assert attention
            own = str(tmp_path / 'attention.ckpt')
            saver = tf1.train.Saver() if block == 'cbam' else None
            with session() as sess:
                sess.run(tf1.global_variables_initializer())
                initial = sess.run(attention)
                init_fn(sess)
                for var, value in zip(variables, sess.run(variables)):
                    np.testing.assert_array_equal(
                        value, values['InceptionV3' + var.op.name[len(scope):]],
                        var.op.name)
                for var, a, b in zip(attention, initial, sess.run(attention)):
                    np.testing.assert_array_equal(a, b, var.op.name)
                if saver:
                    saver.save(sess, own, write_meta_graph=False)
                    saved = {v.op.name: x for v, x in zip(
                        tf1.global_variables(), sess.run(tf1.global_variables()))}
    with tf.Graph().as_default():
        with slim.arg_scope(inception.inception_v3_arg_scope()):
            inception.inception_v3(_images('inception_v3'), NUM_CLASSES,
                                   attention_module='cbam')
        variables = tf1.global_variables()
        with session() as sess:
            tf1.train.Saver().restore(sess, own)
            for var, value in zip(variables, sess.run(variables)):
                np.testing.assert_array_equal(value, saved[var.op.name], var.op.name)


@pytest.mark.parametrize('name', NETS)
def test_gradients_and_one_training_step(name):
    """Each block's net, one SGD step: each attention variable gets a
    gradient, the step moves the net's loss and its attention variables.
    (Whether one step lowers a full network's loss at these sizes is chance:
    its last blocks are 2 x 2, their batch norms see few values;
    tests/test_nets_resnet.py checks the descent on small nets.)"""
    for block in BLOCKS:
        case = built(name, block)
        with case['graph'].as_default():
            labels = tf.constant([0, 1, 2, 3])
            loss = tf1.losses.sparse_softmax_cross_entropy(labels, case['net'],
                                                           loss_collection=None)
            optimizer = tf1.train.GradientDescentOptimizer(1e-4)
            attention = nets.attention_variables()
            names = {v.op.name for v in case['trainable']}
            trainable = [v for v in attention if v.op.name in names]
            grads_and_vars = optimizer.compute_gradients(loss, case['trainable'])
            grads = {v.op.name: g for g, v in grads_and_vars}
            assert trainable and not [v.op.name for v in trainable
                                      if grads[v.op.name] is None], block
            with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
                train_op = optimizer.apply_gradients(grads_and_vars)
            feed = {case['images']: np.random.RandomState(0).uniform(
                -1, 1, case['images'].shape.as_list()).astype(np.float32)}
            with session() as sess:
                sess.run(tf1.global_variables_initializer())
                before, start = sess.run([loss, attention], feed)
                sess.run(train_op, feed)
                after, end = sess.run([loss, attention], feed)
        assert np.isfinite(after) and after != before, (block, before, after)
        moved = {v.op.name for v, x, y in zip(attention, start, end)
                 if not np.array_equal(x, y)}
        assert moved and all(n.startswith(scope_of(name, block) + '/') for n in moved), block


def test_base_stages_params_and_is_training(graph):
    """inception_v2_base up to Mixed_4a: attention_stages and attention_params
    hold; the block's batch norm follows the arg_scope's is_training."""
    images = tf1.placeholder(tf.float32, [1, 32, 32, 3])
    with slim.arg_scope([slim.batch_norm], is_training=False):
        net, end_points = inception.inception_v2_base(
            images, final_endpoint='Mixed_4a', attention_module='cbam',
            attention_stages=['Mixed_4a', 'Mixed_3c'],
            attention_params={'reduction_ratio': 8})
    assert nets.attention_scopes() == ['InceptionV2/Mixed_3c/CBAM/',
                                       'InceptionV2/Mixed_4a/CBAM/']
    assert end_points['Mixed_4a'] is net
    assert signature(nets.attention_variables('InceptionV2/Mixed_3c/'))[0] == (
        'InceptionV2/Mixed_3c/CBAM/ChannelAttention/fc1/weights', [320, 40])
    # Inference: the moving statistics are read, never updated.
    assert not tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)


@pytest.mark.parametrize('kwargs, error, match', [
    ({'attention_module': 'inception_se'}, ValueError,
     r"one of 'se', 'cbam'.*got 'inception_se'"),
    ({'attention_module': 'se', 'attention_stages': ['Mixed_6a']}, ValueError,
     r"attention_stages must be a non-empty collection of 'Mixed_3b', .*"
     r"got \['Mixed_6a'\]"),
    ({'attention_module': 'eca', 'attention_params': {'reduction_ratio': 4}},
     ValueError, r"attention_params for 'eca': 'reduction_ratio' not accepted"),
    ({'attention_module': 'se', 'attention_params': 8}, TypeError,
     r'attention_params must be None or a dict'),
    ({'attention_modul': 'se'}, TypeError, r"attention_modul"),
])
def test_bad_arguments_raise_before_any_op(graph, kwargs, error, match):
    images = tf1.placeholder(tf.float32, [1, 224, 224, 3])
    ops = len(graph.get_operations())
    with pytest.raises(error, match=match):
        inception.inception_v1(images, **kwargs)
    assert len(graph.get_operations()) == ops
