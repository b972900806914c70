"""slim_attention: tf.contrib.slim for today's TensorFlow, plus attention layers.

``import slim_attention as slim`` replaces ``slim = tf.contrib.slim``. The
namespace is tf-slim's whole public API (the very same objects), repaired for
current TensorFlow and NumPy by :mod:`slim_attention._compat`, plus slim-style
attention layers (see :mod:`slim_attention.attention`).
"""
import importlib

from slim_attention import _compat

_compat.apply()

# tf-slim's public API, the same objects (``slim_attention.conv2d is tf_slim.conv2d``).
from tf_slim import *  # noqa: E402,F401,F403
from tf_slim import data  # noqa: E402,F401
import tf_slim.nets.alexnet  # noqa: E402,F401
import tf_slim.nets.inception  # noqa: E402,F401
import tf_slim.nets.overfeat  # noqa: E402,F401
import tf_slim.nets.resnet_utils  # noqa: E402,F401
import tf_slim.nets.resnet_v1  # noqa: E402,F401
import tf_slim.nets.resnet_v2  # noqa: E402,F401
import tf_slim.nets.vgg  # noqa: E402,F401

from slim_attention.attention import *  # noqa: E402,F401,F403
# tf-slim's nets with attention_module=...; tf_slim.nets' other modules through
# it. Imported by path: ``from tf_slim import *`` may have bound tf_slim's nets.
nets = importlib.import_module('slim_attention.nets')
from slim_attention.contrib_alias import install_contrib_alias  # noqa: E402,F401
from slim_attention import distributed  # noqa: E402  (TF1 cluster repairs, TF_CONFIG)
distributed.apply()

__version__ = "0.1.0"
