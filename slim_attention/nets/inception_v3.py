"""tf-slim's Inception v3 with an ``attention_module`` argument.

Szegedy et al., "Rethinking the Inception Architecture for Computer Vision",
2015. Same names and signatures as ``tf_slim.nets.inception_v3``, plus
``attention_module`` (None, 'se', 'cbam', 'sam', 'gc', 'eca', 'nl';
'se_block' and 'cbam_block' too), ``attention_params`` (a dict for the block)
and ``attention_stages`` (Mixed block names, :data:`MIXED_BLOCKS`). Anything
else (``inception_v3_arg_scope``, ...) is tf-slim's own object.

Placement (no paper puts CBAM, GC, ECA or non-local in Inception v3): after
each Mixed block's concatenation, the reduction blocks Mixed_6a and 7a
included, inside the block's scope -- where SE-Inception puts SE (SENet
paper, Fig. 2: the SE block on the Inception module's output). The inner
concatenations of Mixed_7b/7c's branches are left alone. The block's output
is the Mixed block's end point and the next block's input (and the auxiliary
classifier's, after Mixed_6e); its variables live under the Mixed block, e.g.
``InceptionV3/Mixed_5b/CBAM/...``. Default: all eleven Mixed blocks;
non-local only in the first and last 35 x 35 blocks (Mixed_5b, 5d) and the
first, middle and last 17 x 17 ones (Mixed_6a, 6c, 6e) at 299 px: the
non-local paper's five blocks, two at res3's and three at res4's resolution,
and its cost grows with (H*W)^2. ECA uses the adaptive kernel size of each
block's width. How the block gets in without copying tf-slim's code:
:mod:`slim_attention.nets.inception_utils`.
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
