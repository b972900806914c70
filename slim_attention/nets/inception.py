"""Inception v1, v2 and v3 with attention under one namespace, as
``tf_slim.nets.inception``."""
from slim_attention.nets.inception_v1 import inception_v1
from slim_attention.nets.inception_v1 import inception_v1_arg_scope
from slim_attention.nets.inception_v1 import inception_v1_base
from slim_attention.nets.inception_v2 import inception_v2
from slim_attention.nets.inception_v2 import inception_v2_arg_scope
from slim_attention.nets.inception_v2 import inception_v2_base
from slim_attention.nets.inception_v3 import inception_v3
from slim_attention.nets.inception_v3 import inception_v3_arg_scope
from slim_attention.nets.inception_v3 import inception_v3_base

__all__ = ['inception_v1', 'inception_v1_arg_scope', 'inception_v1_base',
           'inception_v2', 'inception_v2_arg_scope', 'inception_v2_base',
           'inception_v3', 'inception_v3_arg_scope', 'inception_v3_base']
