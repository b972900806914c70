"""tf-slim's ``resnet_utils``, plus where attention goes in a ResNet.

Everything of ``tf_slim.nets.resnet_utils`` is here as is (``Block``,
``conv2d_same``, ``subsample``, ``stack_blocks_dense``, ``resnet_arg_scope``).
:func:`attach_attention` turns a list of Blocks into Blocks whose units carry
their attention layer:

* 'se', 'cbam', 'sam', 'eca': in every bottleneck of stages 1-4 (block1-block4,
  the papers' res2-res5), on the residual branch after its last conv (and its
  batch norm in v1), before the addition with the shortcut. ECA's kernel sizes
  are 3, 5, 5, 7 per stage, as in the released ECA-ResNet-50 (the adaptive
  formula of the paper would give 5, 5, 5, 7 there);
  ``attention_params={'kernel_size': k}`` sets one size for every stage.
* 'gc': the same place, in stages 2-4 only (GCNet's c3-c5).
* 'nl': between units, after the output of unit ``k * (n // c)`` for
  ``k = 1..c``, with ``c = 2`` blocks in stage 2 (res3) and ``c = 3`` in
  stage 3 (res4), ``n`` the stage's unit count: units 2, 4 of res3 and 2, 4, 6
  of res4 for ResNet-50 and units 2, 4 and 7, 14, 21 for ResNet-101 -- both
  exactly the official video-nonlocal-net configurations; 4, 8 and 12, 24, 36
  for ResNet-152; 12, 24 and 12, 24, 36 for ResNet-200. Always five blocks.

NOTE: tf-slim subsamples in the LAST unit of a stage (see tf-slim's
resnet_utils), so the non-local block after the last unit of res3 sees res4's
resolution (14 x 14 for a 224 image instead of 28 x 28); its parameters are
the same.
"""
from tf_slim.nets import resnet_utils as _tf_resnet_utils
from tf_slim.nets.resnet_utils import Block  # noqa: F401
from tf_slim.nets.resnet_utils import conv2d_same  # noqa: F401
from tf_slim.nets.resnet_utils import resnet_arg_scope  # noqa: F401
from tf_slim.nets.resnet_utils import stack_blocks_dense  # noqa: F401
from tf_slim.nets.resnet_utils import subsample  # noqa: F401

from slim_attention.nets import placement

UNITS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3),
         200: (3, 24, 36, 3)}
"""Units per stage of tf-slim's ResNets (the same for v1 and v2)."""

ECA_KERNEL_SIZES = (3, 5, 5, 7)
"""ECA's kernel size per stage (the released ECA-ResNet-50)."""

NON_LOCAL_BLOCKS = {2: 2, 3: 3}
"""Non-local blocks per stage (stage 2 = res3, stage 3 = res4)."""

DEFAULT_STAGES = {'gc': (2, 3, 4), 'nl': (2, 3)}
"""Default stages where they differ from all four."""


__getattr__ = placement.delegate_to(_tf_resnet_utils)


def make_blocks(block_fn, depth):
    """tf-slim's four blocks of ResNet-``depth`` (50, 101, 152, 200).

    ``block_fn(scope, base_depth, num_units, stride)`` is ``resnet_v1_block``
    or ``resnet_v2_block``; the last stage has stride 1, as in tf-slim.
    """
    return [block_fn('block%d' % (i + 1), base_depth=64 * 2 ** i,
                     num_units=n, stride=2 if i < 3 else 1)
            for i, n in enumerate(UNITS[depth])]


def non_local_units(num_units, count):
    """The 1-based units after which a stage's non-local blocks go.

    ``k * (num_units // count)`` for ``k = 1..count`` (every unit when the
    stage has fewer than ``count`` units).
    """
    period = num_units // count
    if period < 1:
        return list(range(1, num_units + 1))
    return [k * period for k in range(1, count + 1)]


def attention_unit(inputs, unit_fn, tf_slim_unit_fn, output_attention_fn=None,
                   **kwargs):
    """A residual unit followed by a block between units (non-local).

    Args:
      inputs: the unit's input.
      unit_fn: the residual unit (a slim_attention bottleneck).
      tf_slim_unit_fn: tf-slim's bottleneck it replaces (for its end points).
      output_attention_fn: None, or ``apply(net, outputs_collections)`` from
        :func:`slim_attention.nets.placement.attention_layer`, applied to the
        unit's output.
      **kwargs: the unit's arguments (depth, depth_bottleneck, stride, rate).

    Returns:
      The output.
    """
    net = unit_fn(inputs, **kwargs)
    if output_attention_fn is not None:
        net = output_attention_fn(
            net, placement.inherited_outputs_collections(tf_slim_unit_fn))
    return net


def attach_attention(blocks, attention_module, attention_params,
                     attention_stages, is_training, unit_fns):
    """Returns ``blocks`` with attention in their units (see the module doc).

    Args:
      blocks: a list of :class:`Block` (tf-slim's or slim_attention's units).
      attention_module: None or a name of
        :data:`slim_attention.nets.placement.MODULES` (or an alias).
      attention_params: None or a dict of keyword arguments for the block.
      attention_stages: None (the block's default stages) or 1-based stage
        numbers (block1 is 1).
      is_training: the network's is_training.
      unit_fns: ``(bottleneck, tf_slim_bottleneck)``: slim_attention's
        bottleneck and the tf-slim one it replaces.

    Returns:
      A list of Blocks (``blocks`` itself when attention_module is None).

    Raises:
      ValueError: an unknown attention_module, attention_params key or stage
        (non-local goes in stages 2 and 3 only); a block's unit is neither
        bottleneck.
      TypeError: attention_params is not a dict.
    """
    name = placement.resolve_module(attention_module)
    if name is None:
        return blocks
    params = placement.check_params(name, attention_params)
    stages_all = tuple(range(1, len(blocks) + 1))
    allowed = tuple(NON_LOCAL_BLOCKS) if name == 'nl' else stages_all
    stages = placement.check_stages(
        attention_stages, allowed,
        [s for s in DEFAULT_STAGES.get(name, stages_all) if s in stages_all])
    ours, theirs = unit_fns
    result = []
    for stage, block in enumerate(blocks, 1):
        if stage not in stages:
            result.append(block)
            continue
        if block.unit_fn not in unit_fns:
            raise ValueError(
                'attention needs %s.%s (or tf-slim\'s) as the unit of block %r, '
                'got %r' % (ours.__module__, ours.__name__, block.scope,
                            block.unit_fn))
        stage_params = dict(params)
        if name == 'eca' and 'kernel_size' not in params \
                and stage <= len(ECA_KERNEL_SIZES):
            stage_params['kernel_size'] = ECA_KERNEL_SIZES[stage - 1]
        layer = placement.attention_layer(name, stage_params, is_training)
        if name == 'nl':
            after = non_local_units(len(block.args), NON_LOCAL_BLOCKS[stage])
            args = [dict(unit, unit_fn=ours, tf_slim_unit_fn=theirs,
                         output_attention_fn=layer if i in after else None)
                    for i, unit in enumerate(block.args, 1)]
            result.append(Block(block.scope, attention_unit, args))
        else:
            result.append(Block(block.scope, ours,
                                [dict(unit, attention_fn=layer)
                                 for unit in block.args]))
    return result


def attention_generator(tf_generator, unit_fns):
    """tf-slim's ResNet generator ``tf_generator`` with the attention arguments.

    Args:
      tf_generator: ``tf_slim.nets.resnet_v1.resnet_v1`` or ``...resnet_v2``.
      unit_fns: ``(bottleneck, tf_slim_bottleneck)``, see :func:`attach_attention`.

    Returns:
      A function with tf-slim's generator arguments plus ``attention_module``,
      ``attention_params`` and ``attention_stages``.
    """
    def generator(inputs, blocks, num_classes=None, is_training=True,
                  global_pool=True, output_stride=None, include_root_block=True,
                  reuse=None, scope=None, attention_module=None,
                  attention_params=None, attention_stages=None):
        blocks = attach_attention(blocks, attention_module, attention_params,
                                  attention_stages, is_training, unit_fns)
        return tf_generator(
            inputs, blocks, num_classes, is_training, global_pool,
            output_stride, include_root_block=include_root_block, reuse=reuse,
            scope=scope)

    generator.__name__ = generator.__qualname__ = tf_generator.__name__
    generator.__doc__ = GENERATOR_DOC % tf_generator.__name__
    generator.default_image_size = 224
    return generator


def depth_network(generator, block_fn, depth):
    """ResNet-``depth`` from ``generator`` and ``block_fn`` (tf-slim's signature).

    Returns:
      ``resnet_vN_<depth>(inputs, num_classes=None, is_training=True,
      global_pool=True, output_stride=None, reuse=None,
      scope='resnet_vN_<depth>', attention_module=None, attention_params=None,
      attention_stages=None)``.
    """
    name = '%s_%d' % (generator.__name__, depth)

    def network(inputs, num_classes=None, is_training=True, global_pool=True,
                output_stride=None, reuse=None, scope=name,
                attention_module=None, attention_params=None,
                attention_stages=None):
        return generator(
            inputs, make_blocks(block_fn, depth), num_classes, is_training,
            global_pool, output_stride, include_root_block=True, reuse=reuse,
            scope=scope, attention_module=attention_module,
            attention_params=attention_params,
            attention_stages=attention_stages)

    network.__name__ = network.__qualname__ = name
    network.__doc__ = 'ResNet-%d (%s); see ``%s`` for the arguments.' % (
        depth, generator.__name__, generator.__name__)
    return network


GENERATOR_DOC = """tf-slim's %s generator, with attention in the blocks' units.

    See tf-slim's generator for the other arguments; blocks may use tf-slim's
    or slim_attention's bottleneck.

    Args:
      attention_module: None or 'se', 'cbam', 'sam', 'gc', 'eca', 'nl' (or
        'se_block', 'cbam_block').
      attention_params: optional dict of keyword arguments for the block.
      attention_stages: optional 1-based stages (block1 = 1) to restrict the
        block to; default: all for se/cbam/sam/eca, 2-4 for gc, 2-3 for nl.

    Returns:
      ``(net, end_points)`` as tf-slim's; with attention, end_points also holds
      every attention layer's output under its scope.

    Raises:
      ValueError: an unknown attention_module, attention_params key or stage,
        and tf-slim's errors.
      TypeError: attention_params is not a dict.
    """
