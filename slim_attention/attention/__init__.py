"""Slim-style attention layers, faithful to the papers' official code.

Each block is an ``@add_arg_scope`` function with tf-slim's signature
(inputs, hyperparameters, initializers/regularizers, reuse, collections,
trainable, data_format, scope); one module per mechanism, shared helpers in
``_utils``. The math, defaults and parameter counts are documented in
``docs/attention.md``.
"""
from slim_attention.attention._utils import ATTENTION_MAPS
from slim_attention.attention.cbam import channel_attention
from slim_attention.attention.cbam import convolutional_block_attention_module
from slim_attention.attention.cbam import spatial_attention
from slim_attention.attention.eca import efficient_channel_attention
from slim_attention.attention.global_context import global_context
from slim_attention.attention.non_local import non_local_block
from slim_attention.attention.registry import get_attention_fn
from slim_attention.attention.se import squeeze_and_excitation

__all__ = [
    'ATTENTION_MAPS',
    'channel_attention',
    'convolutional_block_attention_module',
    'efficient_channel_attention',
    'get_attention_fn',
    'global_context',
    'non_local_block',
    'spatial_attention',
    'squeeze_and_excitation',
]
