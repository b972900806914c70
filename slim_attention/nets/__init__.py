"""tf-slim's classification networks with an ``attention_module`` argument.

``slim_attention.nets.resnet_v1``, ``resnet_v2``, ``vgg``, ``inception``
(``inception_v1``, ``inception_v2``, ``inception_v3``) and ``resnet_utils``
have the names and signatures of their ``tf_slim.nets`` counterparts, plus
``attention_module`` (None, 'se', 'cbam', 'sam', 'gc', 'eca', 'nl'; kobiso's
'se_block' and 'cbam_block' as aliases), ``attention_params`` and
``attention_stages``. Whatever a module does not define is tf-slim's own
object. Placements, parameter totals and the fine-tuning recipe: README,
section "Attention in slim's networks".

:func:`attention_scopes` and :func:`attention_variables` list the attention
blocks of the default graph, so restoring a tf-slim checkpoint is::

    init_fn = slim.assign_from_checkpoint_fn(
        path, slim.get_variables_to_restore(exclude=nets.attention_scopes()))
"""
import tf_slim.nets

from slim_attention.nets import inception
from slim_attention.nets import inception_utils
from slim_attention.nets import inception_v1
from slim_attention.nets import inception_v2
from slim_attention.nets import inception_v3
from slim_attention.nets import placement
from slim_attention.nets import resnet_utils
from slim_attention.nets import resnet_v1
from slim_attention.nets import resnet_v2
from slim_attention.nets import vgg
from slim_attention.nets.placement import ALIASES
from slim_attention.nets.placement import ATTENTION_OUTPUTS
from slim_attention.nets.placement import MODULES
from slim_attention.nets.placement import attention_scopes
from slim_attention.nets.placement import attention_variables

__all__ = ['ALIASES', 'ATTENTION_OUTPUTS', 'MODULES', 'attention_scopes',
           'attention_variables', 'inception', 'inception_utils',
           'inception_v1', 'inception_v2', 'inception_v3', 'placement', 'resnet_utils', 'resnet_v1',
           'resnet_v2', 'vgg']


# tf-slim's other networks (alexnet, overfeat, ...) as they are.
__getattr__ = placement.delegate_to(tf_slim.nets)
