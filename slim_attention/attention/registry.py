"""A small registry from a short name to an attention function (timm's ``create_attn``)."""
from slim_attention.attention.cbam import convolutional_block_attention_module
from slim_attention.attention.cbam import spatial_attention
from slim_attention.attention.eca import efficient_channel_attention
from slim_attention.attention.global_context import global_context
from slim_attention.attention.non_local import non_local_block
from slim_attention.attention.se import squeeze_and_excitation

__all__ = ['get_attention_fn']

_ATTENTION_FNS = {
    'se': squeeze_and_excitation,
    'cbam': convolutional_block_attention_module,
    'sam': spatial_attention,
    'gc': global_context,
    'eca': efficient_channel_attention,
    'nl': non_local_block,
}


def get_attention_fn(name):
    """Returns the attention function registered under ``name``.

    Names: 'se' (squeeze_and_excitation), 'cbam'
    (convolutional_block_attention_module), 'sam' (spatial_attention), 'gc'
    (global_context), 'eca' (efficient_channel_attention), 'nl'
    (non_local_block).

    Args:
      name: one of the names above.

    Returns:
      The function (decorated with add_arg_scope, so arg_scope works on it).

    Raises:
      ValueError: ``name`` is not a registered name (the message lists them).
    """
    try:
        return _ATTENTION_FNS[name]
    except (KeyError, TypeError):
        raise ValueError('unknown attention name %r; valid names: %s'
                         % (name, ', '.join(repr(n) for n in _ATTENTION_FNS))) \
            from None
