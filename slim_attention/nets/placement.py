"""What every network shares: the ``attention_module`` names, the attention
layer a network inserts, the per-network stage checks, and the helpers that
find the attention blocks of a built graph.

An attention layer is the registered block
(:func:`slim_attention.attention.get_attention_fn`) called with a fixed scope
name (``SqueezeExcitation``, ``CBAM``, ``SpatialAttention``, ``GlobalContext``,
``ECA``, ``NonLocal``), the network's ``is_training`` for the blocks with a
batch norm, and the user's ``attention_params``. Its output goes to the
network's end points and to the collection :data:`ATTENTION_OUTPUTS`, which
:func:`attention_scopes` and :func:`attention_variables` read.
"""
import inspect

import tensorflow as tf
from tf_slim.ops.arg_scope import arg_scope_func_key
from tf_slim.ops.arg_scope import current_arg_scope

from slim_attention.attention import get_attention_fn

tf1 = tf.compat.v1

__all__ = ['ATTENTION_OUTPUTS', 'MODULES', 'ALIASES', 'SCOPES',
           'delegate_to', 'resolve_module', 'check_params', 'attention_layer',
           'inherited_outputs_collections', 'check_stages',
           'attention_scopes', 'attention_variables']

ATTENTION_OUTPUTS = 'slim_attention_nets_attention_outputs'
"""Graph collection of every attention layer's output (alias: its scope)."""

MODULES = ('se', 'cbam', 'sam', 'gc', 'eca', 'nl')
"""The ``attention_module`` names (the registry's names)."""

ALIASES = {'se_block': 'se', 'cbam_block': 'cbam'}
"""kobiso/CBAM-tensorflow-slim's names, accepted as aliases."""

SCOPES = {'se': 'SqueezeExcitation', 'cbam': 'CBAM', 'sam': 'SpatialAttention',
          'gc': 'GlobalContext', 'eca': 'ECA', 'nl': 'NonLocal'}
"""The scope each block gets inside its unit (the blocks' default scopes)."""

# Set by the network, never by attention_params.
_RESERVED = ('inputs', 'scope', 'reuse', 'outputs_collections', 'is_training',
             'data_format', 'index')


def delegate_to(module):
    """A module-level ``__getattr__`` that hands unknown names to ``module``."""
    def __getattr__(name):  # pylint: disable=invalid-name
        return getattr(module, name)
    __getattr__.__doc__ = 'Anything else comes from ``%s``.' % module.__name__
    return __getattr__


def resolve_module(attention_module):
    """Returns the registry name of ``attention_module`` (None for None).

    Raises:
      ValueError: not None, one of :data:`MODULES` or an alias (the message
        lists them).
    """
    if attention_module is None:
        return None
    name = ALIASES.get(attention_module, attention_module) \
        if isinstance(attention_module, str) else attention_module
    if name not in MODULES:
        raise ValueError(
            'attention_module must be None or one of %s (aliases %s), got %r'
            % (', '.join(repr(m) for m in MODULES),
               ', '.join('%r' % a for a in ALIASES), attention_module))
    return name


def check_params(name, attention_params):
    """Returns ``attention_params`` as a dict after checking its keys.

    Raises:
      TypeError: attention_params is not None or a dict.
      ValueError: a key is not an argument of the block, or is one the
        network sets itself (scope, reuse, is_training, ...).
    """
    if attention_params is None:
        return {}
    if not isinstance(attention_params, dict):
        raise TypeError('attention_params must be None or a dict, got %r (type %s)'
                        % (attention_params, type(attention_params).__name__))
    accepted = [p for p in inspect.signature(get_attention_fn(name)).parameters
                if p not in _RESERVED]
    bad = sorted(k for k in attention_params if k not in accepted)
    if bad:
        raise ValueError(
            'attention_params for %r: %s not accepted (the network sets scope, '
            'reuse, is_training, outputs_collections, data_format); accepted: %s'
            % (name, ', '.join(repr(k) for k in bad), ', '.join(accepted)))
    return dict(attention_params)


def attention_layer(name, params, is_training):
    """Returns ``apply(inputs, outputs_collections=None)``, the block ``name``.

    Args:
      name: a registry name (see :func:`resolve_module`).
      params: checked keyword arguments for the block (see :func:`check_params`).
      is_training: the network's is_training, passed to the blocks that take it
        (CBAM, SAM and non-local have a batch norm).
    """
    fn = get_attention_fn(name)
    kwargs = dict(params)
    if 'is_training' in inspect.signature(fn).parameters:
        kwargs['is_training'] = is_training

    def apply(inputs, outputs_collections=None):
        if outputs_collections is None:
            collections = []
        elif isinstance(outputs_collections, str):
            collections = [outputs_collections]
        else:
            collections = list(outputs_collections)
        return fn(inputs, scope=SCOPES[name],
                  outputs_collections=collections + [ATTENTION_OUTPUTS], **kwargs)
    return apply


def inherited_outputs_collections(fn):
    """The outputs_collections the current arg_scope sets on ``fn``.

    tf-slim's networks collect their end points with
    ``arg_scope([conv2d, bottleneck, ...], outputs_collections=...)``;
    slim_attention's bottlenecks (drop-in replacements of tf-slim's) and
    attention layers join the same collection through this.
    """
    kwargs = current_arg_scope().get(arg_scope_func_key(fn), {})
    return kwargs.get('outputs_collections')


def check_stages(attention_stages, allowed, default):
    """Returns the sorted tuple of stages, ``default`` for None.

    Raises:
      ValueError: attention_stages is empty, or holds a value not in ``allowed``.
    """
    if attention_stages is None:
        return tuple(default)
    try:
        stages = tuple(sorted(set(attention_stages)))
    except TypeError:
        stages = None
    if not stages or any(s not in allowed for s in stages):
        raise ValueError('attention_stages must be a non-empty collection of %s, '
                         'got %r' % (', '.join(repr(s) for s in allowed),
                                     attention_stages))
    return stages


def attention_scopes(scope=None):
    """The scopes of the attention blocks built in the default graph.

    Each ends in '/', so the list is ready for
    ``slim.get_variables_to_restore(exclude=attention_scopes())`` (which
    matches its entries as prefixes of the variable names).

    Args:
      scope: optional string: keep only the scopes that start with it (for
        example the network's scope, 'resnet_v1_50').

    Returns:
      A list of strings such as 'resnet_v1_50/block1/unit_1/bottleneck_v1/CBAM/',
      in the order the blocks were built, without repeats.
    """
    names = []
    for tensor in tf1.get_collection(ATTENTION_OUTPUTS):
        name = tensor.aliases[0] + '/'  # the block's own alias comes first
        if name not in names and (scope is None or name.startswith(scope)):
            names.append(name)
    return names


def attention_variables(scope=None):
    """The global variables of the attention blocks (see :func:`attention_scopes`).

    Args:
      scope: optional string, as for :func:`attention_scopes`.

    Returns:
      A list of variables (weights, biases, norms and moving statistics).
    """
    prefixes = attention_scopes(scope)
    return [v for v in tf1.global_variables()
            if any(v.op.name.startswith(p) for p in prefixes)]

