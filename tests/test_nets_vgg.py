"""slim_attention.nets.vgg: tf-slim's VGG A/16/19 with attention.

Graphs only (224 px, the size tf-slim's fc6 needs): without attention the
graph is tf-slim's; with each block the tf-slim variables keep their names,
the block sits between each stage's last conv and its max-pool, the added
parameters follow the block's formula, and gradients reach every attention
variable. One training step per block runs on the same vgg_a graphs (built
without dropout, so that the step's loss is deterministic).
"""
import numpy as np
import pytest
import tensorflow as tf
import tf_slim.nets as tf_slim_nets

from slim_attention import nets
from slim_attention.attention.eca import adaptive_kernel_size
from slim_attention.nets import vgg

from nets_cases import BLOCKS, build, count, forward, per_unit, shared, signature
from nets_cases import train_step_moves_loss

tf1 = tf.compat.v1

NETS = ('vgg_a', 'vgg_16', 'vgg_19')
CHANNELS = (64, 128, 256, 512, 512)
def vgg_net(name, block, **kwargs):
    """The network at 224 px, 10 classes, batch 1, built once per run (vgg_a
    without dropout: the training steps run on it)."""
    if name == 'vgg_a':
        kwargs['dropout_keep_prob'] = 1.0

    def make():
        if block == 'tf_slim':
            return build(getattr(tf_slim_nets.vgg, name), 224, num_classes=10,
                         batch=1, arg_scope=vgg.vgg_arg_scope(), **kwargs)
        return build(getattr(vgg, name), 224, num_classes=10, batch=1,
                     arg_scope=vgg.vgg_arg_scope(), attention_module=block, **kwargs)
    return shared(('vgg', name, block, tuple(sorted(kwargs.items()))), make)


def expected_total(block, stages=(1, 2, 3, 4, 5)):
    if block == 'nl':
        stages = (4, 5)
    return sum(per_unit(block, CHANNELS[s - 1],
                        eca_kernel=adaptive_kernel_size(CHANNELS[s - 1]))
               for s in stages)


@pytest.mark.parametrize('name', NETS)
def test_without_attention_the_graph_is_tf_slims(name):
    ours, theirs = vgg_net(name, None), vgg_net(name, 'tf_slim')
    assert signature(ours['variables']) == signature(theirs['variables'])
    assert sorted(ours['end_points']) == sorted(theirs['end_points'])
    assert ours['ops'] == theirs['ops']


@pytest.mark.parametrize('block', BLOCKS)
@pytest.mark.parametrize('name', NETS)
def test_each_block_builds_in_place(name, block):
    case, plain = vgg_net(name, block), vgg_net(name, 'tf_slim')
    assert signature(case['base']) == signature(plain['variables'])
    assert count(case['trainable']) - count(plain['trainable']) \
        == expected_total(block)
    graph = case['graph']
    with graph.as_default():
        outputs = tf1.get_collection(nets.ATTENTION_OUTPUTS)
        grads = tf1.gradients(tf.reduce_sum(case['net']),
                              case['trainable_attention'])
    assert all(g is not None for g in grads)
    stages = (4, 5) if block == 'nl' else (1, 2, 3, 4, 5)
    convs = vgg.last_convs(vgg.CONVS_PER_STAGE[name], stages)
    assert [o.aliases[0] for o in outputs] == [
        '%s/%s/%s' % (name, c, nets.placement.SCOPES[block]) for c in convs]
    for stage, conv, output in zip(stages, convs, outputs):
        # In: the conv's relu; out: the stage's max-pool, and nothing else.
        relu = graph.get_tensor_by_name('%s/%s/Relu:0' % (name, conv))
        assert all(op.name.startswith(output.aliases[0] + '/')
                   for op in forward(relu.consumers()))
        assert [op.name for op in forward(output.consumers())] == [
            '%s/pool%d/MaxPool' % (name, stage)]
        assert case['end_points']['%s/%s' % (name, conv)] is output


def test_pinned_names_and_stages():
    case = vgg_net('vgg_16', 'cbam', attention_stages=(5,))
    with case['graph'].as_default():
        assert nets.attention_scopes() == ['vgg_16/conv5/conv5_3/CBAM/']
        assert signature(nets.attention_variables()) == [
            ('vgg_16/conv5/conv5_3/CBAM/ChannelAttention/fc1/weights', [512, 32]),
            ('vgg_16/conv5/conv5_3/CBAM/ChannelAttention/fc1/biases', [32]),
            ('vgg_16/conv5/conv5_3/CBAM/ChannelAttention/fc2/weights', [32, 512]),
            ('vgg_16/conv5/conv5_3/CBAM/ChannelAttention/fc2/biases', [512]),
            ('vgg_16/conv5/conv5_3/CBAM/SpatialAttention/conv/weights', [7, 7, 2, 1]),
            ('vgg_16/conv5/conv5_3/CBAM/SpatialAttention/BatchNorm/beta', [1]),
            ('vgg_16/conv5/conv5_3/CBAM/SpatialAttention/BatchNorm/gamma', [1]),
            ('vgg_16/conv5/conv5_3/CBAM/SpatialAttention/BatchNorm/moving_mean', [1]),
            ('vgg_16/conv5/conv5_3/CBAM/SpatialAttention/BatchNorm/moving_variance',
             [1])]


@pytest.mark.parametrize('kwargs, error, match', [
    ({'attention_module': 'cbam_v2'}, ValueError, r"one of 'se', 'cbam'.*got 'cbam_v2'"),
    ({'attention_module': 'se', 'attention_stages': [6]}, ValueError,
     r'attention_stages must be a non-empty collection of 1, 2, 3, 4, 5, got \[6\]'),
    ({'attention_module': 'se', 'attention_stages': []}, ValueError,
     r'attention_stages must be a non-empty'),
    ({'attention_module': 'eca', 'attention_params': {'reduction_ratio': 4}},
     ValueError, r"attention_params for 'eca': 'reduction_ratio' not accepted"),
])
def test_bad_arguments_raise_before_any_op(graph, kwargs, error, match):
    images = tf1.placeholder(tf.float32, [1, 224, 224, 3])
    ops = len(graph.get_operations())
    with pytest.raises(error, match=match):
        vgg.vgg_19(images, **kwargs)
    assert len(graph.get_operations()) == ops


@pytest.mark.parametrize('block', BLOCKS)
def test_one_training_step(block):
    case = vgg_net('vgg_a', block)
    before, after, grads, _, largest = train_step_moves_loss(case, 10, 1e-4)
    assert all(g is not None for g in grads)
    # A VGG at initialisation passes little signal back to its first stages:
    # ECA's few weights may move less than float32 resolves in one step.
    assert np.isfinite(after) and after < before and largest > 0
