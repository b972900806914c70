"""The blocks inserted into tf-slim's ResNet-50 give the totals of docs/attention.md.

tf-slim's ``resnet_v1_50`` (``resnet_arg_scope(batch_norm_scale=True)``,
1000 classes) is rebuilt with a bottleneck that applies an attention block on
the residual branch after its last conv + BN, before the addition with the
shortcut (where docs/attention.md places SE, CBAM, GC and ECA).
"""
import functools

import numpy as np
import pytest
import tensorflow as tf
from tf_slim.nets import resnet_utils
from tf_slim.nets import resnet_v1

import slim_attention as slim

tf1 = tf.compat.v1

STAGES = [('block1', 64, 3, 2), ('block2', 128, 4, 2),
          ('block3', 256, 6, 2), ('block4', 512, 3, 1)]


@slim.add_arg_scope
def attention_bottleneck(inputs, depth, depth_bottleneck, stride, rate=1,
                         attention_fn=None, outputs_collections=None, scope=None):
    """tf-slim's bottleneck_v1 with ``attention_fn`` on the residual before the add."""
    with tf1.variable_scope(scope, 'bottleneck_v1', [inputs]) as sc:
        depth_in = slim.utils.last_dimension(inputs.get_shape(), min_rank=4)
        if depth == depth_in:
            shortcut = resnet_utils.subsample(inputs, stride, 'shortcut')
        else:
            shortcut = slim.conv2d(inputs, depth, [1, 1], stride=stride,
                                   activation_fn=None, scope='shortcut')
        residual = slim.conv2d(inputs, depth_bottleneck, [1, 1], stride=1,
                               scope='conv1')
        residual = resnet_utils.conv2d_same(residual, depth_bottleneck, 3,
                                            stride, rate=rate, scope='conv2')
        residual = slim.conv2d(residual, depth, [1, 1], stride=1,
                               activation_fn=None, scope='conv3')
        if attention_fn is not None:
            residual = attention_fn(residual)
        output = tf.nn.relu(shortcut + residual)
        return slim.utils.collect_named_outputs(outputs_collections, sc.name,
                                                output)


def resnet_50_params(attention_for_stage=lambda stage: None):
    """Trainable parameters of ResNet-50 with ``attention_for_stage(i)`` (i = 0..3) per unit."""
    with tf.Graph().as_default():
        blocks = []
        for i, (name, base, units, stride) in enumerate(STAGES):
            unit = {'depth': base * 4, 'depth_bottleneck': base,
                    'attention_fn': attention_for_stage(i)}
            blocks.append(resnet_utils.Block(
                name, attention_bottleneck,
                [dict(unit, stride=1)] * (units - 1) + [dict(unit, stride=stride)]))
        images = tf1.placeholder(tf.float32, [None, None, None, 3])
        with slim.arg_scope(resnet_v1.resnet_arg_scope(batch_norm_scale=True)):
            resnet_v1.resnet_v1(images, blocks, num_classes=1000,
                                is_training=True, scope='resnet_v1_50')
        return int(sum(np.prod(v.shape.as_list())
                       for v in tf1.trainable_variables()))


def _every_stage(fn):
    return lambda stage: fn


@pytest.mark.slow
def test_plain_bottleneck_reproduces_resnet_v1_50():
    assert resnet_50_params() == 25557032
    with tf.Graph().as_default():  # and equals tf-slim's own resnet_v1_50
        images = tf1.placeholder(tf.float32, [None, None, None, 3])
        with slim.arg_scope(resnet_v1.resnet_arg_scope(batch_norm_scale=True)):
            resnet_v1.resnet_v1_50(images, num_classes=1000)
        assert sum(np.prod(v.shape.as_list())
                   for v in tf1.trainable_variables()) == 25557032


CASES = [
    ('SE r=16, all 16 blocks', _every_stage(slim.squeeze_and_excitation), 28088024),
    ('CBAM r=16, all 16 blocks',
     _every_stage(slim.convolutional_block_attention_module), 28089624),
    ('GC r=16, c3-c5', lambda stage: slim.global_context if stage > 0 else None,
     28078773),
    ('ECA adaptive k', _every_stage(slim.efficient_channel_attention), 25557118),
    ('ECA k=3,5,5,7', lambda stage: functools.partial(
        slim.efficient_channel_attention, kernel_size=(3, 5, 5, 7)[stage]), 25557112),
    ('Non-local at C=1024 (one block)', None, 2101760),
]
IDS = ['se', 'cbam', 'gc', 'eca_adaptive', 'eca_3557', 'nl']
RESNET_50 = 25557032


@pytest.mark.slow
@pytest.mark.parametrize('name,attention_for_stage,total', CASES[:-1], ids=IDS[:-1])
def test_attention_resnet_50_totals_match_spec_table(name, attention_for_stage, total):
    assert resnet_50_params(attention_for_stage) == total, name


@pytest.mark.parametrize('name,attention_for_stage,total', CASES, ids=IDS)
def test_added_params_match_spec_table(name, attention_for_stage, total):
    """Fast companion of the above: the blocks alone, at each bottleneck's width."""
    with tf.Graph().as_default():
        if attention_for_stage is None:  # one non-local block at C = 1024
            slim.non_local_block(tf1.placeholder(tf.float32, [None, None, None, 1024]))
            assert sum(np.prod(v.shape.as_list())
                       for v in tf1.trainable_variables()) == total
            return
        for i, (_, base, units, _) in enumerate(STAGES):
            fn = attention_for_stage(i)
            for _ in range(units):
                if fn is not None:
                    fn(tf1.placeholder(tf.float32, [None, None, None, base * 4]))
        added = sum(np.prod(v.shape.as_list()) for v in tf1.trainable_variables())
    assert RESNET_50 + added == total, name
