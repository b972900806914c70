"""The Mixed-block hook shared by slim_attention's Inception v1, v2 and v3.

Placement (no paper puts these blocks in Inception): after each Mixed block's
concatenation, inside the block's scope -- where SE-Inception puts SE (SENet
paper, Fig. 2: the block on the Inception module's output). The block's output
becomes the Mixed block's end point and the next block's input; its
variables live under the Mixed block (``InceptionV3/Mixed_5b/CBAM/...``).
``attention_stages`` takes Mixed block names (default: all). Non-local goes
in five mid-resolution blocks only, its paper's count (two at res3's
resolution, three at res4's), as its cost grows with (H*W)^2; each module
names them. ECA takes the adaptive kernel size of each block's width.

tf-slim builds each Inception ("Mixed") block inline: its branches, then
``net = array_ops.concat([branch_0, ...], 3)`` inside the block's variable
scope, then ``end_points[end_point] = net``; the next block reads ``net``.
Neither an arg_scope nor an argument reaches that concatenation, so the hook
goes in through the one name every block calls there: the module-level
``array_ops`` of ``tf_slim.nets.inception_v1/v2/v3`` is replaced (once, when
slim_attention's inception modules are imported) by
:class:`ArrayOpsWithMixedHook`, which hands every attribute to TensorFlow's
``array_ops`` and only adds a step after ``concat``: when one of
slim_attention's Inception functions is running (a thread-local hook, set
for the duration of the call) and the current variable scope is one of the
chosen Mixed blocks, the attention block is applied to the concatenation,
inside that scope. Its output is what tf-slim then stores as the block's end
point and feeds to the next block. With no hook set (``attention_module=None``,
tf-slim's own functions, any other caller) ``concat`` is TensorFlow's, call
for call: the same ops and names.

The other way to place a block after the concatenation is to copy tf-slim's
~500-line network functions and edit them; the proxy keeps tf-slim's code the
one definition of the networks (and of their checkpoints' names).
"""
import contextlib
import inspect
import threading

import tensorflow as tf
from tensorflow.python.ops import array_ops
from tf_slim import layers
from tf_slim.layers import layers as layers_lib
from tf_slim.ops.arg_scope import arg_scope_func_key
from tf_slim.ops.arg_scope import current_arg_scope

from slim_attention.nets import placement

tf1 = tf.compat.v1

__all__ = ['ArrayOpsWithMixedHook', 'install', 'mixed_hook', 'mixed_attention',
           'attention_inception']

ATTENTION_ARGUMENTS = ('attention_module', 'attention_params', 'attention_stages')

_ACTIVE = threading.local()


class ArrayOpsWithMixedHook:
    """TensorFlow's ``array_ops`` with a hook after ``concat`` (see the module doc)."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)

    def concat(self, *args, **kwargs):
        """``array_ops.concat``, then the active hook (if any) on its output."""
        net = self._module.concat(*args, **kwargs)
        hook = getattr(_ACTIVE, 'hook', None)
        return net if hook is None else hook(net)


def install(module):
    """Gives tf-slim's inception ``module`` the hooked ``array_ops`` (idempotent)."""
    if not isinstance(module.array_ops, ArrayOpsWithMixedHook):
        module.array_ops = ArrayOpsWithMixedHook(array_ops)


@contextlib.contextmanager
def mixed_hook(hook):
    """Makes ``hook`` (``tensor -> tensor`` or None) the active one in this thread."""
    previous = getattr(_ACTIVE, 'hook', None)
    _ACTIVE.hook = hook
    try:
        yield
    finally:
        _ACTIVE.hook = previous


def mixed_attention(name, params, blocks):
    """The hook: the block ``name`` after the concatenation of the Mixed ``blocks``.

    Other concatenations (the inner ones of Inception v3's Mixed_7b/7c, which
    run in a branch's scope) pass through. ``is_training`` for the blocks with
    a batch norm is the one tf-slim's network gives its own batch norms (its
    arg_scope), so ``inception_v3_base`` under the user's arg_scope gets it too.
    """
    def hook(net):
        if tf1.get_variable_scope().name.rsplit('/', 1)[-1] not in blocks:
            return net
        is_training = current_arg_scope().get(
            arg_scope_func_key(layers_lib.batch_norm), {}).get('is_training', True)
        layer = placement.attention_layer(name, params, is_training)
        with mixed_hook(None):  # the block's own ops are never hooked
            return layer(net, placement.inherited_outputs_collections(layers.conv2d))
    return hook


def attention_inception(tf_fn, blocks, default_blocks):
    """``tf_fn`` (a tf-slim Inception function) with the attention arguments.

    Args:
      tf_fn: tf-slim's ``inception_v?`` or ``inception_v?_base``.
      blocks: the network's Mixed blocks, in order (``attention_stages``' values).
      default_blocks: ``{block name: Mixed blocks}`` where the default is not
        every block.

    Returns:
      A function with ``tf_fn``'s signature plus ``attention_module=None,
      attention_params=None, attention_stages=None``.
    """
    signature = inspect.signature(tf_fn)
    extra = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                               default=None) for n in ATTENTION_ARGUMENTS]
    full = signature.replace(parameters=list(signature.parameters.values()) + extra)

    def network(*args, **kwargs):
        bound = full.bind(*args, **kwargs)
        module, params, stages = (bound.arguments.pop(n, None)
                                  for n in ATTENTION_ARGUMENTS)
        name = placement.resolve_module(module)
        if name is None:
            return tf_fn(*bound.args, **bound.kwargs)
        params = placement.check_params(name, params)
        stages = placement.check_stages(stages, blocks,
                                        default_blocks.get(name, blocks))
        with mixed_hook(mixed_attention(name, params, stages)):
            return tf_fn(*bound.args, **bound.kwargs)

    network.__signature__ = full
    network.__name__ = network.__qualname__ = tf_fn.__name__
    network.__doc__ = NETWORK_DOC % (tf_fn.__name__, ', '.join(blocks))
    if hasattr(tf_fn, 'default_image_size'):
        network.default_image_size = tf_fn.default_image_size
    return network


NETWORK_DOC = """tf-slim's %s, with attention after each Mixed block's concatenation.

    See tf-slim's function for the other arguments; the module's docstring
    for the placement.

    Args:
      attention_module: None or 'se', 'cbam', 'sam', 'gc', 'eca', 'nl' (or
        'se_block', 'cbam_block').
      attention_params: optional dict of keyword arguments for the block.
      attention_stages: optional Mixed blocks to restrict the block to (%s);
        default: all, five mid-resolution blocks for nl.

    Returns:
      As tf-slim's; a Mixed block's end point is the block's output.

    Raises:
      ValueError: an unknown attention_module, attention_params key or stage.
      TypeError: attention_params is not a dict; arguments tf-slim's function
        does not take.
    """
