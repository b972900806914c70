"""GC block: global context.

Cao, Xu, Lin, Wei, Hu, "GCNet: Non-local Networks Meet Squeeze-Excitation
Networks and Beyond", ICCV Workshops 2019 / TPAMI 2020.
https://arxiv.org/abs/1904.11492 ; official code: xvjiarui/GCNet,
mmdet/ops/gcb/context_block.py.

1. Context modelling, pooling 'attention': ``m = conv1x1(x; C -> 1, bias)``,
   softmax over the H*W positions, ``ctx = sum_j p_j x_j``; pooling 'avg':
   ``ctx = mean_{H,W} x``.
2. Transform ``T``: conv1x1 (C -> P, bias) -> LayerNorm over the P channels
   (eps 1e-5, gamma and beta) -> relu -> conv1x1 (P -> C, bias).
3. Fusion 'add': ``out = x + T_add(ctx)``; 'mul': ``out = x * sigmoid(T_mul(ctx))``;
   'both': mul first, then add (each with its own transform).

Faithful to the official code: ``conv_mask`` He-normal fan_in with zero bias,
the last conv of each transform zero (weights and bias, ``zero_init_last``),
so a freshly inserted 'add' block is the identity.

NOTE: the first conv of each transform defaults to PyTorch's default Conv2d
init (U(+-1/sqrt(fan_in))), which the official code leaves in place; biases
default to zero (PyTorch's default bias init is uniform) so that one
``biases_initializer`` serves every bias.
NOTE: the 1x1 convolutions are matmuls over the channel axis, so NCHW needs no
NCHW conv kernel (none exists on CPU).
NOTE: float16/bfloat16 inputs get float32 variables and a float32 context
branch (see :func:`slim_attention.attention._args.compute_dtype`).
"""
import tensorflow as tf
from tf_slim.ops.arg_scope import add_arg_scope

from slim_attention.attention import _args
from slim_attention.attention import _fused_ops
from slim_attention.attention import _layers
from slim_attention.attention import _norms

tf1 = tf.compat.v1

__all__ = ['global_context']

POOLINGS = ('attention', 'avg')
FUSIONS = ('add', 'mul', 'both')


def _transforms(fusion):
    """The transforms a fusion uses, in the order the block builds them."""
    return [name for name, on in (('channel_mul', fusion in ('mul', 'both')),
                                  ('channel_add', fusion in ('add', 'both')))
            if on]


def _variables(channels, units, pooling, fusion, args, mask_args, last_args):
    """The variables :func:`global_context` creates (for ``_args.check_scope``)."""
    variables = []
    if pooling == 'attention':
        variables += _layers.layer_variables('conv_mask', [1, 1, channels, 1],
                                             mask_args)
    for name in _transforms(fusion):
        variables += (
            _layers.layer_variables(name + '/conv1', [1, 1, channels, units], args)
            + _norms.norm_variables(name + '/LayerNorm', units, args.dtype)
            + _layers.layer_variables(name + '/conv2', [1, 1, units, channels],
                                      last_args))
    return variables


def _transform(context, name, units, activation_fn, layer_norm_epsilon, args,
               last_args, data_format):
    """The transform T under scope ``name``: conv1x1 -> LayerNorm -> act -> conv1x1."""
    channels = _args.static_dim(context, _args.channel_axis(data_format))
    with tf1.variable_scope(name):
        net = _layers.conv1x1(context, units, args, data_format,
                              'conv1')  # [N,1,1,P] or [N,P,1,1]
        net = _norms.layer_norm(net, layer_norm_epsilon, args.dtype,
                                args.trainable, args.variables_collections,
                                data_format)
        net = activation_fn(net)
        net = _layers.conv1x1(net, channels, last_args, data_format,
                              'conv2')  # [N,1,1,C] or [N,C,1,1]
    return net


@add_arg_scope
def global_context(inputs,  # >60 lines: the slim Args/Raises docstring
                   reduction_ratio=None,
                   inner_units_ratio=None,
                   pooling='attention',
                   fusion='add',
                   activation_fn=tf.nn.relu,
                   gate_fn=tf.sigmoid,
                   layer_norm_epsilon=1e-5,
                   zero_init_last=True,
                   weights_initializer=None,
                   weights_regularizer=None,
                   biases_initializer=tf1.zeros_initializer(),
                   biases_regularizer=None,
                   reuse=None,
                   variables_collections=None,
                   outputs_collections=None,
                   trainable=True,
                   data_format='NHWC',
                   scope=None):
    """Global context block: ``x + T(ctx)`` (and/or ``x * gate_fn(T(ctx))``).

    Variables (attention pooling, 'add' fusion)::

      GlobalContext/conv_mask/weights [1, 1, C, 1]   conv_mask/biases [1]
      GlobalContext/channel_add/conv1/weights [1, 1, C, P]   conv1/biases [P]
      GlobalContext/channel_add/LayerNorm/gamma [P]   LayerNorm/beta [P]
      GlobalContext/channel_add/conv2/weights [1, 1, P, C]   conv2/biases [C]

    ('mul' fusion: the same transform under ``channel_mul/``.)
    Params (attention pooling, add fusion): ``2*C*P + 3*P + 2*C + 1``.
    In ResNet (GCNet's configs) it goes in the bottlenecks of stages c3-c5,
    after the last conv + BN, before the residual addition.

    Args:
      inputs: a 4-D float tensor, [N, H, W, C] (NHWC) or [N, C, H, W] (NCHW);
        N, H and W may be unknown, C must be known.
      reduction_ratio: hidden width ``P = max(1, C // reduction_ratio)``;
        defaults to 16 when neither ratio is given.
      inner_units_ratio: alternative form, ``P = max(1, int(C * inner_units_ratio))``
        (GCNet's ``ratio``). Give at most one of the two ratios.
      pooling: 'attention' (softmax-weighted sum, default) or 'avg'.
      fusion: 'add' (default), 'mul' or 'both' (mul, then add).
      activation_fn: the transform's hidden activation (relu).
      gate_fn: squashes the 'mul' transform (sigmoid).
      layer_norm_epsilon: the LayerNorm epsilon (1e-5).
      zero_init_last: if True (official) the last conv of each transform
        starts at zero, weights and bias.
      weights_initializer: initializer of all conv weights (but see
        zero_init_last); None means the official ones (He-normal fan_in for
        conv_mask, PyTorch default for conv1).
      weights_regularizer: optional regularizer of the conv weights.
      biases_initializer: initializer of the conv biases (but see
        zero_init_last); None means no biases.
      biases_regularizer: optional regularizer of the biases.
      reuse: whether to reuse the variables of ``scope``.
      variables_collections: extra collections for the variables.
      outputs_collections: collections to add the output to.
      trainable: if True the variables go to TRAINABLE_VARIABLES.
      data_format: 'NHWC' or 'NCHW'.
      scope: variable scope; default 'GlobalContext'.

    Returns:
      A tensor of the input's shape and dtype.

    Raises:
      ValueError: data_format, pooling or fusion is not one of its values; a
        ratio is not positive or finite, reduction_ratio < 1 or
        inner_units_ratio > 1 (a widening bottleneck); both ratios are given;
        inputs are not rank 4 or have unknown channels.
        Also the scope, reuse and channel checks of every block (see
        :mod:`slim_attention.attention`), all before any op exists.
      TypeError: a ratio is not a number; inputs are not floating point;
        activation_fn or gate_fn is not callable.
    """
    data_format = _args.check_data_format(data_format)
    reduction_ratio, inner_units_ratio = _args.check_ratios(
        reduction_ratio, inner_units_ratio, 16)
    _args.check_choice('pooling', pooling, POOLINGS)
    _args.check_choice('fusion', fusion, FUSIONS)
    _args.check_callable('activation_fn', activation_fn)
    _args.check_callable('gate_fn', gate_fn)
    _args.check_positive_number('layer_norm_epsilon', layer_norm_epsilon)
    dtype, channels = _args.check_inputs(inputs, data_format)
    units = _args.hidden_units(channels, reduction_ratio, inner_units_ratio)
    args = _layers.layer_args(dtype, weights_initializer, weights_regularizer,
                              biases_initializer, biases_regularizer,
                              trainable, variables_collections,
                              _layers.torch_default_initializer())
    mask_initializer = weights_initializer
    if mask_initializer is None:
        mask_initializer = _layers.he_normal_initializer('fan_in')
    mask_args = args._replace(weights_initializer=mask_initializer)
    last_args = args  # the last conv of each transform
    if zero_init_last:
        last_args = args._replace(
            weights_initializer=tf1.zeros_initializer(),
            biases_initializer=(None if biases_initializer is None
                                else tf1.zeros_initializer()))
    _args.check_scope(scope, 'GlobalContext', reuse,
                      _variables(channels, units, pooling, fusion, args,
                                 mask_args, last_args))

    with tf1.variable_scope(scope, 'GlobalContext', [inputs],
                            reuse=reuse) as sc:
        inputs, x = _args.cast_in(inputs, dtype, args.dtype)
        if pooling == 'attention':
            context = _fused_ops.attention_pool(x, mask_args, data_format)  # [N,1,C]/[N,C,1]
        else:
            context = _fused_ops.mean_pool(x, _args.spatial_axes(data_format))  # [N, C]
        context = tf.reshape(context, _args.gate_shape(channels, data_format))
        outputs = inputs
        for name in _transforms(fusion):  # mul, then add
            net = _transform(context, name, units, activation_fn,
                             layer_norm_epsilon, args, last_args, data_format)
            if name == 'channel_mul':
                outputs = outputs * tf.cast(gate_fn(net), dtype)
            else:
                outputs = outputs + tf.cast(net, dtype)
        return _layers.collect(outputs_collections, sc.name, outputs)
