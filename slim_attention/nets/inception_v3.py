"""tf-slim's Inception v3 with an ``attention_module`` argument.

Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
2015; tf-slim's ``inception_v3``, ``inception_v3_base`` with the attention
arguments of :mod:`slim_attention.nets.inception_utils` (placement: after each
Mixed block's concatenation, Mixed_6a and 7a included; not the inner
concatenations of Mixed_7b/7c's branches; after Mixed_6e the block feeds the
auxiliary classifier too). Stages: the eleven :data:`MIXED_BLOCKS`, all by
default; non-local in Mixed_5b, 5d (35 x 35 at 299 px) and 6a, 6c, 6e
(17 x 17). Anything else is tf-slim's own object.
"""
from tf_slim.nets import inception_v3 as _tf_inception_v3

from slim_attention.nets import inception_utils
from slim_attention.nets import placement

MIXED_BLOCKS = ('Mixed_5b', 'Mixed_5c', 'Mixed_5d', 'Mixed_6a', 'Mixed_6b',
                'Mixed_6c', 'Mixed_6d', 'Mixed_6e', 'Mixed_7a', 'Mixed_7b',
                'Mixed_7c')
DEFAULT_BLOCKS = {'nl': ('Mixed_5b', 'Mixed_5d', 'Mixed_6a', 'Mixed_6c', 'Mixed_6e')}
"""Default Mixed blocks where they differ from all of them."""

inception_utils.install(_tf_inception_v3)

__getattr__ = placement.delegate_to(_tf_inception_v3)

inception_v3_arg_scope = _tf_inception_v3.inception_v3_arg_scope
inception_v3_base = inception_utils.attention_inception(
    _tf_inception_v3.inception_v3_base, MIXED_BLOCKS, DEFAULT_BLOCKS)
inception_v3 = inception_utils.attention_inception(
    _tf_inception_v3.inception_v3, MIXED_BLOCKS, DEFAULT_BLOCKS)
