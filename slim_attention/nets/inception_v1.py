"""tf-slim's Inception v1 (GoogLeNet) with an ``attention_module`` argument.

Szegedy et al., "Going Deeper with Convolutions", 2014; tf-slim's
``inception_v1``, ``inception_v1_base`` with the attention arguments of
:mod:`slim_attention.nets.inception_utils` (placement: after each Mixed
block's concatenation, e.g. ``InceptionV1/Mixed_4b/CBAM/...``). Stages: the
nine :data:`MIXED_BLOCKS`, all by default; non-local in Mixed_3b, 3c (28 x 28
at 224 px) and 4b, 4d, 4f (14 x 14). Anything else is tf-slim's own object.
"""
from tf_slim.nets import inception_v1 as _tf_inception_v1

from slim_attention.nets import inception_utils
from slim_attention.nets import placement

MIXED_BLOCKS = ('Mixed_3b', 'Mixed_3c', 'Mixed_4b', 'Mixed_4c', 'Mixed_4d',
                'Mixed_4e', 'Mixed_4f', 'Mixed_5b', 'Mixed_5c')
DEFAULT_BLOCKS = {'nl': ('Mixed_3b', 'Mixed_3c', 'Mixed_4b', 'Mixed_4d', 'Mixed_4f')}
"""Default Mixed blocks where they differ from all of them."""

inception_utils.install(_tf_inception_v1)

__getattr__ = placement.delegate_to(_tf_inception_v1)

inception_v1_arg_scope = _tf_inception_v1.inception_v1_arg_scope
inception_v1_base = inception_utils.attention_inception(
    _tf_inception_v1.inception_v1_base, MIXED_BLOCKS, DEFAULT_BLOCKS)
inception_v1 = inception_utils.attention_inception(
    _tf_inception_v1.inception_v1, MIXED_BLOCKS, DEFAULT_BLOCKS)
