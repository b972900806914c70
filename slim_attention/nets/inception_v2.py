"""tf-slim's Inception v2 (BN-Inception) with an ``attention_module`` argument.

Ioffe, Szegedy, "Batch Normalization", 2015; tf-slim's ``inception_v2``,
``inception_v2_base`` with the attention arguments of
:mod:`slim_attention.nets.inception_utils` (placement: after each Mixed
block's concatenation, the reduction blocks Mixed_4a and 5a included). Stages:
the ten :data:`MIXED_BLOCKS`, all by default; non-local in Mixed_3b, 3c (28 x
28 at 224 px) and 4a, 4c, 4e (14 x 14). Anything else is tf-slim's own object.
"""
from tf_slim.nets import inception_v2 as _tf_inception_v2

from slim_attention.nets import inception_utils
from slim_attention.nets import placement

MIXED_BLOCKS = ('Mixed_3b', 'Mixed_3c', 'Mixed_4a', 'Mixed_4b', 'Mixed_4c',
                'Mixed_4d', 'Mixed_4e', 'Mixed_5a', 'Mixed_5b', 'Mixed_5c')
DEFAULT_BLOCKS = {'nl': ('Mixed_3b', 'Mixed_3c', 'Mixed_4a', 'Mixed_4c', 'Mixed_4e')}
"""Default Mixed blocks where they differ from all of them."""

inception_utils.install(_tf_inception_v2)

__getattr__ = placement.delegate_to(_tf_inception_v2)

inception_v2_arg_scope = _tf_inception_v2.inception_v2_arg_scope
inception_v2_base = inception_utils.attention_inception(
    _tf_inception_v2.inception_v2_base, MIXED_BLOCKS, DEFAULT_BLOCKS)
inception_v2 = inception_utils.attention_inception(
    _tf_inception_v2.inception_v2, MIXED_BLOCKS, DEFAULT_BLOCKS)
