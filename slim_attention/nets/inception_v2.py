"""tf-slim's Inception v2 (BN-Inception) with an ``attention_module`` argument.

Ioffe, Szegedy, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift", 2015. Same names and signatures as
``tf_slim.nets.inception_v2``, plus ``attention_module`` (None, 'se', 'cbam',
'sam', 'gc', 'eca', 'nl'; 'se_block' and 'cbam_block' too),
``attention_params`` (a dict for the block) and ``attention_stages`` (Mixed
block names, :data:`MIXED_BLOCKS`). Anything else (``inception_v2_arg_scope``,
...) is tf-slim's own object.

Placement (no paper puts these blocks in Inception v2): after each Mixed
block's concatenation, the reduction blocks Mixed_4a and 5a included, inside
the block's scope, as SE-Inception does (SENet paper, Fig. 2). The block's
output is the Mixed block's end point and the next block's input; its
variables live under the Mixed block, e.g. ``InceptionV2/Mixed_4b/CBAM/...``.
Default: all ten Mixed blocks; non-local only in the two 28 x 28 blocks
(Mixed_3b, 3c) and in the first, middle and last 14 x 14 ones (Mixed_4a,
4c, 4e) at 224 px: the non-local paper's five blocks, two at res3's and three
at res4's resolution, and its cost grows with (H*W)^2. ECA uses the adaptive
kernel size of each block's width. How the block gets in without copying
tf-slim's code: :mod:`slim_attention.nets.inception_utils`.
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
