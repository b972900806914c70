"""slim_attention.nets.resnet_v1 / resnet_v2: tf-slim's ResNets with attention.

Each block in resnet_v1_50 and resnet_v2_50 (graphs only, 32 px): it builds;
every tf-slim variable keeps its name and shape; the block's variables are
pinned for one unit; the block sits on the residual branch (checked through
the graph's ops); the added parameters are the papers' totals. Gradients and
one training step run on a small network built from the same modules
(``resnet_v1.resnet_v1`` with four short blocks), plus one step of the real
resnet_v1_50 with CBAM.
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_slim.nets as tf_slim_nets

import slim_attention as slim
from slim_attention import nets
from slim_attention.nets import resnet_utils
from slim_attention.nets import resnet_v1
from slim_attention.nets import resnet_v2

from nets_cases import BLOCKS, RESNET_50_TOTALS, build, count, per_unit, signature
from nets_cases import RESNETS as VERSIONS
from nets_cases import forward, resnet_50, session, tiny_blocks, tiny_resnets
from nets_cases import train_step_moves_loss

tf1 = tf.compat.v1

# One unit's attention variables, relative to resnet_v?_50/<unit>/bottleneck_v?.
PINNED = {
    'se': ('block1/unit_1', [
        ('SqueezeExcitation/fc1/weights', [256, 16]),
        ('SqueezeExcitation/fc1/biases', [16]),
        ('SqueezeExcitation/fc2/weights', [16, 256]),
        ('SqueezeExcitation/fc2/biases', [256])]),
    'cbam': ('block1/unit_1', [
        ('CBAM/ChannelAttention/fc1/weights', [256, 16]),
        ('CBAM/ChannelAttention/fc1/biases', [16]),
        ('CBAM/ChannelAttention/fc2/weights', [16, 256]),
        ('CBAM/ChannelAttention/fc2/biases', [256]),
        ('CBAM/SpatialAttention/conv/weights', [7, 7, 2, 1]),
        ('CBAM/SpatialAttention/BatchNorm/beta', [1]),
        ('CBAM/SpatialAttention/BatchNorm/gamma', [1]),
        ('CBAM/SpatialAttention/BatchNorm/moving_mean', [1]),
        ('CBAM/SpatialAttention/BatchNorm/moving_variance', [1])]),
    'sam': ('block4/unit_3', [
        ('SpatialAttention/conv/weights', [7, 7, 2, 1]),
        ('SpatialAttention/BatchNorm/beta', [1]),
        ('SpatialAttention/BatchNorm/gamma', [1]),
        ('SpatialAttention/BatchNorm/moving_mean', [1]),
        ('SpatialAttention/BatchNorm/moving_variance', [1])]),
    'gc': ('block2/unit_1', [
        ('GlobalContext/conv_mask/weights', [1, 1, 512, 1]),
        ('GlobalContext/conv_mask/biases', [1]),
        ('GlobalContext/channel_add/conv1/weights', [1, 1, 512, 32]),
        ('GlobalContext/channel_add/conv1/biases', [32]),
        ('GlobalContext/channel_add/LayerNorm/beta', [32]),
        ('GlobalContext/channel_add/LayerNorm/gamma', [32]),
        ('GlobalContext/channel_add/conv2/weights', [1, 1, 32, 512]),
        ('GlobalContext/channel_add/conv2/biases', [512])]),
    'eca': ('block4/unit_1', [('ECA/conv/weights', [7, 1, 1])]),
    # Non-local goes after the unit, beside its bottleneck scope.
    'nl': ('block2/unit_2', [
        ('theta/weights', [1, 1, 512, 256]), ('theta/biases', [256]),
        ('phi/weights', [1, 1, 512, 256]), ('phi/biases', [256]),
        ('g/weights', [1, 1, 512, 256]), ('g/biases', [256]),
        ('out/weights', [1, 1, 256, 512]), ('out/biases', [512]),
        ('BatchNorm/beta', [512]), ('BatchNorm/gamma', [512]),
        ('BatchNorm/moving_mean', [512]), ('BatchNorm/moving_variance', [512])]),
}

@pytest.mark.parametrize('version', sorted(VERSIONS))
def test_without_attention_the_graph_is_tf_slims(version):
    ours, theirs = resnet_50(version, None), resnet_50(version, 'tf_slim')
    assert signature(ours['variables']) == signature(theirs['variables'])
    assert sorted(ours['end_points']) == sorted(theirs['end_points'])
    for name, tensor in theirs['end_points'].items():
        assert ours['end_points'][name].shape == tensor.shape, name
    assert ours['ops'] == theirs['ops']
    assert ours['attention'] == [] and nets.attention_scopes() == []


@pytest.mark.parametrize('block', BLOCKS)
@pytest.mark.parametrize('version', sorted(VERSIONS))
def test_base_variables_keep_tf_slims_names(version, block):
    case = resnet_50(version, block)
    assert signature(case['base']) == signature(
        resnet_50(version, 'tf_slim')['variables'])
    assert case['attention']
    assert set(resnet_50(version, 'tf_slim')['end_points']) <= set(case['end_points'])


@pytest.mark.parametrize('block', BLOCKS)
@pytest.mark.parametrize('version', sorted(VERSIONS))
def test_parameter_totals_are_the_papers(version, block):
    case = resnet_50(version, block)
    added = count(case['trainable']) - count(
        resnet_50(version, 'tf_slim')['trainable'])
    assert added == RESNET_50_TOTALS[block]
    assert count(case['trainable_attention']) == added


@pytest.mark.parametrize('block', BLOCKS)
@pytest.mark.parametrize('version', sorted(VERSIONS))
def test_one_unit_variables_are_pinned(version, block):
    unit, expected = PINNED[block]
    prefix = 'resnet_%s_50/%s/%s' % (
        version, unit, 'NonLocal' if block == 'nl' else 'bottleneck_' + version)
    with resnet_50(version, block)['graph'].as_default():
        got = signature(nets.attention_variables(prefix + '/'))
    assert sorted(got) == sorted((prefix + '/' + n, s) for n, s in expected)


@pytest.mark.parametrize('version', sorted(VERSIONS))
@pytest.mark.parametrize('block, units', [
    ('se', 16), ('cbam', 16), ('sam', 16), ('eca', 16), ('gc', 13), ('nl', 5)])
def test_placement_units(version, block, units):
    with resnet_50(version, block)['graph'].as_default():
        scopes = nets.attention_scopes()
    assert len(scopes) == units
    if block == 'gc':
        assert all('/block1/' not in s for s in scopes)
    if block == 'nl':
        assert [s.split('/', 1)[1] for s in scopes] == [
            'block2/unit_2/NonLocal/', 'block2/unit_4/NonLocal/',
            'block3/unit_2/NonLocal/', 'block3/unit_4/NonLocal/',
            'block3/unit_6/NonLocal/']
    if block == 'eca':
        with resnet_50(version, block)['graph'].as_default():
            kernels = [v.shape[0] for v in nets.attention_variables()]
        assert kernels == [3] * 3 + [5] * 4 + [5] * 6 + [7] * 3


def _unit_inputs(graph, end_points, version):
    """{unit scope: its input tensor} from the end points, in build order."""
    units = [k for k in end_points if k.endswith('/bottleneck_' + version)]
    units.sort(key=lambda k: [int(p.split('_')[-1]) if p.startswith('unit_')
                              else int(p[5:]) if p.startswith('block') else 0
                              for p in k.split('/')])
    root = units[0].split('/')[0]
    previous = ([graph.get_tensor_by_name(root + '/pool1/MaxPool:0')]
                + [end_points[k] for k in units])
    return dict(zip(units, previous))


def _add_of(tensor):
    consumers = forward(tensor.consumers())
    adds = [op for op in consumers if op.type in ('Add', 'AddV2')]
    assert len(adds) == 1 and len(consumers) == 1, consumers
    return adds[0]


@pytest.mark.parametrize('block', ('se', 'cbam', 'sam', 'gc', 'eca'))
@pytest.mark.parametrize('version', sorted(VERSIONS))
def test_block_sits_on_the_residual_branch(version, block):
    case = resnet_50(version, block)
    graph, end_points = case['graph'], case['end_points']
    with graph.as_default():
        outputs = tf1.get_collection(nets.ATTENTION_OUTPUTS)
    for output in outputs:
        scope = output.aliases[0]
        unit = scope.rsplit('/', 1)[0]
        # In: the last conv (v1: with its batch norm), only into the block.
        conv3 = end_points[unit + '/conv3']
        assert forward(conv3.consumers()) and all(
            op.name.startswith(scope + '/') for op in forward(conv3.consumers()))
        # Out: the addition, whose other input is the shortcut.
        add = _add_of(output)
        assert add.name.startswith(unit + '/')
        other = [t for t in add.inputs if t is not output]
        assert len(other) == 1
        unit_input = _unit_inputs(graph, end_points, version)[unit]
        assert (other[0].op.name.startswith(unit + '/shortcut/')
                or other[0] is unit_input), (scope, other[0])


@pytest.mark.parametrize('version', sorted(VERSIONS))
def test_non_local_sits_between_units(version):
    case = resnet_50(version, 'nl')
    graph, end_points = case['graph'], case['end_points']
    with graph.as_default():
        outputs = tf1.get_collection(nets.ATTENTION_OUTPUTS)
    following = {'block2/unit_2': 'block2/unit_3', 'block2/unit_4': 'block3/unit_1',
                 'block3/unit_2': 'block3/unit_3', 'block3/unit_4': 'block3/unit_5',
                 'block3/unit_6': 'block4/unit_1'}
    for output in outputs:
        scope = output.aliases[0]
        root, unit = scope.split('/', 1)[0], scope.split('/', 1)[1].rsplit('/', 1)[0]
        unit_output = end_points['%s/%s/bottleneck_%s' % (root, unit, version)]
        assert all(op.name.startswith(scope + '/')
                   for op in forward(unit_output.consumers()))
        nxt = '%s/%s/' % (root, following[unit])
        readers = forward(output.consumers())
        assert readers and all(op.name.startswith(nxt) for op in readers), readers


def _tiny_blocks(version):
    return tiny_blocks(getattr(VERSIONS[version][0], 'resnet_%s_block' % version))


def _tiny(version, block):
    ours = VERSIONS[version][0]
    generator = getattr(ours, 'resnet_' + version)

    def fn(images, num_classes, **kwargs):
        return generator(images, _tiny_blocks(version), num_classes,
                         include_root_block=False, scope='tiny', **kwargs)
    return build(fn, 32, num_classes=3, arg_scope=ours.resnet_arg_scope(),
                 attention_module=block)


@pytest.mark.parametrize('version', sorted(VERSIONS))
def test_gradients_and_one_training_step(version):
    """Every block, in one graph: six small networks (three one-unit blocks,
    the module's own generator and bottleneck; shared with the checkpoint
    round trips), one summed loss."""
    case = tiny_resnets(version)
    with case['graph'].as_default():
        attention = nets.attention_variables()
        names = {v.op.name for v in tf1.trainable_variables()}
        trainable = [v for v in attention if v.op.name in names]
        labels = tf.constant([0, 1, 2, 0])
        losses = [tf1.losses.sparse_softmax_cross_entropy(
            labels, case['logits'][b], loss_collection=None) for b in BLOCKS]
        # One backward pass: the step's own gradients are the ones checked.
        optimizer = tf1.train.GradientDescentOptimizer(1e-3)
        grads_and_vars = optimizer.compute_gradients(tf.add_n(losses))
        grads = dict((v.op.name, g) for g, v in grads_and_vars)
        grads = [grads[v.op.name] for v in trainable]
        with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
            train_op = optimizer.apply_gradients(grads_and_vars)
        feed = {case['images']: np.random.RandomState(0).uniform(
            0, 1, [4, 32, 32, 3]).astype(np.float32)}
        with session() as sess:
            sess.run(tf1.global_variables_initializer())
            before, start = sess.run([losses, attention], feed)
            sess.run(train_op, feed)
            after, end = sess.run([losses, attention], feed)
    missing = [v.op.name for v, g in zip(trainable, grads) if g is None]
    assert not missing
    for block, b, a in zip(BLOCKS, before, after):
        assert a < b, (block, b, a)
    moved = {v.op.name.split('/')[0] for v, x, y in
             zip(attention, start, end) if not np.array_equal(x, y)}
    assert moved == set(BLOCKS)


def test_real_resnet_v1_50_with_cbam_trains_one_step():
    """The shared resnet_v1_50 graph (1000 classes, batch 2, 32 px). At this
    size block4 is 1 x 1 and its batch norms normalise two values: one SGD
    step's sign is chance there (the tiny networks above check the descent),
    so this checks that the step reaches every CBAM and moves the loss."""
    case = resnet_50('v1', 'cbam')
    before, after, grads, changed, _ = train_step_moves_loss(case, 3, 1e-4)
    assert len(grads) == 16 * 7 and all(g is not None for g in grads)
    assert np.isfinite(after) and after != before and changed > 0


@pytest.mark.parametrize('alias, name', [('se_block', 'SqueezeExcitation'),
                                         ('cbam_block', 'CBAM')])
def test_kobiso_aliases(alias, name):
    case = _tiny('v1', alias)
    with case['graph'].as_default():
        assert nets.attention_scopes()[0] == (
            'tiny/block1/unit_1/bottleneck_v1/%s/' % name)


def test_attention_params_and_stages():
    case = _tiny('v1', None)
    with case['graph'].as_default():
        images = tf1.placeholder(tf.float32, [1, 32, 32, 3])
        blocks = [resnet_v1.resnet_v1_block('block%d' % i, 4, 1, 2)
                  for i in (1, 2)]
        with slim.arg_scope(resnet_v1.resnet_arg_scope()):
            resnet_v1.resnet_v1(images, blocks, 3, scope='r16',
                                attention_module='se', attention_stages=[2])
            resnet_v1.resnet_v1(images, blocks, 3, scope='r4',
                                attention_module='se',
                                attention_params={'reduction_ratio': 4})
        assert nets.attention_scopes('r16') == [
            'r16/block2/unit_1/bottleneck_v1/SqueezeExcitation/']
        assert signature(nets.attention_variables('r4/block1/'))[0] == (
            'r4/block1/unit_1/bottleneck_v1/SqueezeExcitation/fc1/weights', [16, 4])


@pytest.mark.parametrize('kwargs, error, match', [
    ({'attention_module': 'senet'}, ValueError,
     r"attention_module must be None or one of 'se', 'cbam', 'sam', 'gc', 'eca', "
     r"'nl' \(aliases 'se_block', 'cbam_block'\), got 'senet'"),
    ({'attention_module': 'se', 'attention_params': {'ratio': 8}}, ValueError,
     r"attention_params for 'se': 'ratio' not accepted.*reduction_ratio"),
    ({'attention_module': 'se', 'attention_params': {'scope': 'x'}}, ValueError,
     r"'scope' not accepted"),
    ({'attention_module': 'se', 'attention_params': [('reduction_ratio', 8)]},
     TypeError, r'attention_params must be None or a dict'),
    ({'attention_module': 'se', 'attention_stages': [0, 1]}, ValueError,
     r'attention_stages must be a non-empty collection of 1, 2, 3, 4, got \[0, 1\]'),
    ({'attention_module': 'nl', 'attention_stages': [1]}, ValueError,
     r'attention_stages must be a non-empty collection of 2, 3, got \[1\]'),
])
def test_bad_arguments_raise_before_any_op(graph, kwargs, error, match):
    images = tf1.placeholder(tf.float32, [1, 32, 32, 3])
    ops = len(graph.get_operations())
    with pytest.raises(error, match=match):
        resnet_v1.resnet_v1_50(images, 10, **kwargs)
    assert len(graph.get_operations()) == ops


def test_reuse_shares_every_variable(graph):
    images = tf1.placeholder(tf.float32, [1, 32, 32, 3])
    with slim.arg_scope(resnet_v2.resnet_arg_scope()):
        for reuse in (None, True):
            resnet_v2.resnet_v2(images, _tiny_blocks('v2'), 10, scope='tiny',
                                include_root_block=False,
                                attention_module='cbam', reuse=reuse)
            if not reuse:
                count_before = len(tf1.global_variables())
    assert len(tf1.global_variables()) == count_before


@pytest.mark.parametrize('num_units, count_, expected', [
    (4, 2, [2, 4]), (6, 3, [2, 4, 6]),        # ResNet-50 (official)
    (23, 3, [7, 14, 21]),                     # ResNet-101 res4 (official)
    (8, 2, [4, 8]), (36, 3, [12, 24, 36]),    # ResNet-152, -200
    (24, 2, [12, 24]), (1, 2, [1])])
def test_non_local_rule(num_units, count_, expected):
    assert resnet_utils.non_local_units(num_units, count_) == expected


def test_module_delegates_to_tf_slim():
    assert resnet_v1.resnet_arg_scope is tf_slim_nets.resnet_v1.resnet_arg_scope
    assert resnet_v2.resnet_utils is resnet_utils
    assert resnet_utils.Block is tf_slim_nets.resnet_utils.Block
    assert resnet_utils.layers is tf_slim_nets.resnet_utils.layers
    assert slim.nets is nets and slim.nets.alexnet is tf_slim_nets.alexnet
    with pytest.raises(AttributeError):
        resnet_v1.no_such_name  # noqa: B018


# The README's table for the deeper networks (v1 and v2 add the same).
DEPTH_TOTALS = {
    101: {'se': 4777712, 'cbam': 4781012, 'gc': 4788062, 'eca': 165,
          'sam': 3300, 'nl': 7358464},
    152: {'se': 6629040, 'cbam': 6634040, 'gc': 6656687, 'eca': 250,
          'sam': 5000, 'nl': 7358464},
    200: {'se': 7162032, 'cbam': 7168632, 'gc': 7198911, 'eca': 330,
          'sam': 6600, 'nl': 7358464},
}


@pytest.mark.parametrize('depth', [50] + sorted(DEPTH_TOTALS))
def test_totals_follow_the_per_unit_rule(depth):
    """The README's rule: per-unit counts at C = 256..2048 times the units
    (GC from stage 2, ECA k = 3, 5, 5, 7), non-local always 2 + 3 blocks."""
    widths, units = (256, 512, 1024, 2048), resnet_utils.UNITS[depth]
    totals = RESNET_50_TOTALS if depth == 50 else DEPTH_TOTALS[depth]
    for block in ('se', 'cbam', 'sam', 'gc', 'eca'):
        assert totals[block] == sum(
            n * per_unit(block, c, eca_kernel=k) for stage, (n, c, k) in
            enumerate(zip(units, widths, resnet_utils.ECA_KERNEL_SIZES), 1)
            if block != 'gc' or stage > 1), block
    assert totals['nl'] == 2 * per_unit('nl', 512) + 3 * per_unit('nl', 1024)


@pytest.mark.slow
@pytest.mark.parametrize('block', ('gc', 'nl'))
def test_resnet_101_totals(block):
    """A deeper net's wiring: GC in every unit of stages 2-4 (4 + 23 + 3), the
    non-local units of res4 at 23 units. (Per-unit counts: the 50-layer graphs.)"""
    case = build(resnet_v1.resnet_v1_101, 32, batch=1,
                 arg_scope=resnet_v1.resnet_arg_scope(), attention_module=block)
    assert count(case['trainable_attention']) == DEPTH_TOTALS[101][block]
    with case['graph'].as_default():
        scopes = nets.attention_scopes()
    assert len(scopes) == {'gc': 30, 'nl': 5}[block]
    if block == 'nl':
        assert [s.split('/')[2] for s in scopes[2:]] == ['unit_7', 'unit_14', 'unit_21']
