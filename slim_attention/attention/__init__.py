"""Slim-style attention layers, faithful to the papers' official code.

Each block is an ``@add_arg_scope`` function with tf-slim's signature
(inputs, hyperparameters, initializers/regularizers, reuse, collections,
trainable, data_format, scope); one module per mechanism (``se``, ``cbam``,
``eca``, ``global_context``, ``non_local``), ``registry`` maps short names to
them. The private helpers they share: ``_args`` (argument checks, layout,
dtype policy), ``_layers`` (variables and weighted layers), ``_norms`` (batch
and layer norm) and ``_fused_ops`` (pooling and softmax with registered
gradients). The math, defaults and parameter counts are documented in
``docs/attention.md``.

Errors every block raises, besides its own, before it adds an op or a
variable: ValueError when the inputs have 0 channels; without reuse, when
the scope already holds the block's variables; with ``reuse=True``, when
they do not exist yet; with reuse, when one has another shape or dtype; when
reuse is given without a scope or is not True/False/None/AUTO_REUSE.
TypeError when the scope is not None, a string or a VariableScope.
"""
from slim_attention.attention.cbam import ATTENTION_MAPS
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
