"""The blocks in slim.nets' ResNet-50 give the totals of docs/attention.md.

``slim_attention.nets.resnet_v1.resnet_v1_50`` (``resnet_arg_scope()``, whose
``batch_norm_scale`` is True, 1000 classes) with ``attention_module`` puts the
block on the residual branch after the last conv + BN, before the addition with
the shortcut, in the stages the papers use (docs/attention.md, "Placement in a
ResNet"); the totals are that page's table. tf-slim's own ``resnet_v1_50`` gives
the base.
"""
import functools

import numpy as np
import pytest
import tensorflow as tf
import tf_slim.nets

import slim_attention as slim
from slim_attention.nets import resnet_v1

tf1 = tf.compat.v1

# Bottleneck widths and unit counts of ResNet-50's four stages.
STAGES = [(256, 3), (512, 4), (1024, 6), (2048, 3)]
RESNET_50 = 25557032

# (attention_module, attention_params, total trainable parameters).
TABLE = {
    'se': ('se', None, 28088024),
    'cbam': ('cbam', None, 28089624),
    'gc': ('gc', None, 28078773),                                  # stages c3-c5
    'eca_adaptive': ('eca', {'kernel_size': None}, 25557118),      # k = 5, 5, 5, 7
    'eca_3557': ('eca', None, 25557112),                           # slim.nets' default
}


def _trainable_params():
    return int(sum(np.prod(v.shape.as_list()) for v in tf1.trainable_variables()))


def resnet_50_params(network_fn, **kwargs):
    """Trainable parameters of ``network_fn`` (a resnet_v1_50) at 1000 classes."""
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [None, None, None, 3])
        with slim.arg_scope(resnet_v1.resnet_arg_scope()):
            network_fn(images, num_classes=1000, **kwargs)
        return _trainable_params()


def test_tf_slims_resnet_v1_50_is_the_base():
    assert resnet_50_params(tf_slim.nets.resnet_v1.resnet_v1_50) == RESNET_50


@pytest.mark.parametrize('row', sorted(TABLE))
def test_attention_resnet_50_totals_match_the_table(row):
    module, params, total = TABLE[row]
    assert resnet_50_params(resnet_v1.resnet_v1_50, attention_module=module,
                            attention_params=params) == total, row


CASES = [
    ('se', lambda stage: slim.squeeze_and_excitation, 28088024),
    ('cbam', lambda stage: slim.convolutional_block_attention_module, 28089624),
    ('gc', lambda stage: slim.global_context if stage > 0 else None, 28078773),
    ('eca_adaptive', lambda stage: slim.efficient_channel_attention, 25557118),
    ('eca_3557', lambda stage: functools.partial(
        slim.efficient_channel_attention, kernel_size=(3, 5, 5, 7)[stage]), 25557112),
]


@pytest.mark.parametrize('name,attention_for_stage,total', CASES, ids=[c[0] for c in CASES])
def test_added_params_match_the_table(name, attention_for_stage, total):
    """The blocks alone, one per bottleneck at its width: the table from the
    blocks' own functions, independent of slim.nets' placement."""
    with tf.Graph().as_default():
        for stage, (channels, units) in enumerate(STAGES):
            fn = attention_for_stage(stage)
            for _ in range(units if fn is not None else 0):
                fn(tf1.placeholder(tf.float32, [None, None, None, channels]))
        assert RESNET_50 + _trainable_params() == total, name


def test_one_non_local_block_at_1024_channels():
    with tf.Graph().as_default():
        slim.non_local_block(tf1.placeholder(tf.float32, [None, None, None, 1024]))
        assert _trainable_params() == 2101760
