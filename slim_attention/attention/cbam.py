"""CBAM: Convolutional Block Attention Module.

Woo, Park, Lee, Kweon, "CBAM: Convolutional Block Attention Module", ECCV 2018.
https://arxiv.org/abs/1807.06521 ; official code: Jongchan/attention-module,
MODELS/cbam.py.

Channel gate (``channel_attention``): average- and max-pooled descriptors go
through ONE shared MLP (C -> P, bias, relu, P -> C, bias), are summed and
squashed, ``x' = x * sigmoid(MLP(avg) + MLP(max))``.
Spatial gate (``spatial_attention``): ``[max_c x', mean_c x']`` (official
order) -> k x k conv (2 -> 1, no bias) -> BatchNorm -> sigmoid,
``out = x' * map``. CBAM applies the channel gate, then the spatial gate.

Faithful to the official code: shared MLP with biases, max-then-mean order,
BN (gamma, beta) after the spatial conv and no activation, He-normal fan_out
init for the spatial conv, zero biases, spatial BN gamma initialised to 0 (the
map starts at sigmoid(0) = 0.5).

NOTE: the MLP weights default to PyTorch's default Linear init
(U(+-1/sqrt(fan_in))), which the official code leaves in place; the spatial
BN defaults to the official epsilon 1e-5 and momentum 0.01 (decay 0.99)
rather than slim's 0.001/0.999.
NOTE: in NCHW the 2-channel pooled map is built directly in NHWC (the stack of
two [N, H, W] reductions) for the k x k convolution, because TF's CPU conv has
no NCHW kernel; the map is returned in the input's layout.
NOTE: float16/bfloat16 inputs get float32 variables and a float32 gate (see
:func:`slim_attention.attention._args.compute_dtype`); the gate is cast to
the input dtype before it multiplies the input.
"""
import tensorflow as tf
from tf_slim.ops.arg_scope import add_arg_scope

from slim_attention.attention import _args
from slim_attention.attention import _fused_ops
from slim_attention.attention import _layers
from slim_attention.attention import _norms

tf1 = tf.compat.v1

__all__ = ['ATTENTION_MAPS', 'channel_attention', 'spatial_attention',
           'convolutional_block_attention_module']

#: Graph collection holding every spatial attention map (sigmoid output).
ATTENTION_MAPS = 'attention_maps'


def _spatial_variables(kernel_size, args, prefix=''):
    """The variables :func:`spatial_attention` creates (see ``_args.check_scope``)."""
    return (_layers.layer_variables(prefix + 'conv',
                                    [kernel_size, kernel_size, 2, 1], args)
            + _norms.norm_variables(prefix + 'BatchNorm', 1, args.dtype,
                                    moving=True))


def _default_scope(index, scope):
    """CBAM's default scope: 'CBAM', or 'cbam_<index>' (the VGG tutorial's form)."""
    if index is None:
        return 'CBAM'
    if isinstance(index, bool) or not isinstance(index, int):
        raise TypeError('index must be a non-negative int, got %r (type %s)'
                        % (index, type(index).__name__))
    if index < 0:
        raise ValueError('index must be a non-negative int, got %r' % index)
    if scope is not None:
        raise ValueError(
            'give index or scope, not both: index names the default scope '
            "'cbam_<index>'; got index=%r and scope=%r" % (index, scope))
    return 'cbam_%d' % index


@add_arg_scope
def channel_attention(inputs,  # >60 lines: the slim Args/Raises docstring
                      reduction_ratio=None,
                      inner_units_ratio=None,
                      activation_fn=tf.nn.relu,
                      gate_fn=tf.sigmoid,
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
    """CBAM's channel gate: ``x * gate_fn(MLP(avgpool(x)) + MLP(maxpool(x)))``.

    One MLP (the same variables) serves both pooled descriptors:
    ``fc1`` (C -> P, bias) -> ``activation_fn`` -> ``fc2`` (P -> C, bias).
    Params: ``2*C*P + P + C``.

    Args:
      inputs: a 4-D float tensor, [N, H, W, C] (NHWC) or [N, C, H, W] (NCHW);
        N, H and W may be unknown, C must be known.
      reduction_ratio: hidden width ``P = max(1, C // reduction_ratio)``;
        defaults to 16 when neither ratio is given.
      inner_units_ratio: alternative form, ``P = max(1, int(C * inner_units_ratio))``.
        Give at most one of the two ratios.
      activation_fn: the MLP's hidden activation.
      gate_fn: squashes the summed logits into the gate.
      weights_initializer: initializer of ``fc1/weights`` and ``fc2/weights``;
        None means PyTorch's default Linear init, as in the official code.
      weights_regularizer: optional regularizer of the weights.
      biases_initializer: initializer of the biases; None means no biases.
      biases_regularizer: optional regularizer of the biases.
      reuse: whether to reuse the variables of ``scope``.
      variables_collections: extra collections for the variables (a list, or
        a dict keyed by 'weights'/'biases').
      outputs_collections: collections to add the output to.
      trainable: if True the variables go to TRAINABLE_VARIABLES.
      data_format: 'NHWC' or 'NCHW'.
      scope: variable scope; default 'ChannelAttention'.

    Returns:
      A tensor of the input's shape and dtype.

    Raises:
      ValueError: data_format is not 'NHWC'/'NCHW'; a ratio is not positive
        or finite, or widens the bottleneck (reduction_ratio < 1,
        inner_units_ratio > 1); both ratios are given; inputs are not rank 4
        or have unknown channels.
        Also the scope, reuse and channel checks of every block (see
        :mod:`slim_attention.attention`), all before any op exists.
      TypeError: a ratio is not a number; inputs are not floating point;
        activation_fn or gate_fn is not callable.
    """
    dtype, channels, units, args = _layers.mlp_gate_args(
        inputs, reduction_ratio=reduction_ratio,
        inner_units_ratio=inner_units_ratio, activation_fn=activation_fn,
        gate_fn=gate_fn, weights_initializer=weights_initializer,
        weights_regularizer=weights_regularizer,
        biases_initializer=biases_initializer,
        biases_regularizer=biases_regularizer, trainable=trainable,
        variables_collections=variables_collections, data_format=data_format)
    _args.check_scope(scope, 'ChannelAttention', reuse,
                      _layers.mlp_variables(channels, units, args))

    with tf1.variable_scope(scope, 'ChannelAttention', [inputs],
                            reuse=reuse) as sc:
        inputs, x = _args.cast_in(inputs, dtype, args.dtype)
        axes = _args.spatial_axes(data_format)
        avg, mx = _fused_ops.mean_and_max(x, axes)  # [N, C] each
        pooled = tf.concat([avg, mx], axis=0)  # [2N, C]: one pass of the shared MLP

        logits = _layers.mlp(pooled, units, activation_fn, args)  # [2N, C]
        avg_logits, max_logits = tf.split(logits, 2, axis=0)  # 2 x [N, C]
        gate = gate_fn(avg_logits + max_logits)
        outputs = _layers.scale_channels(inputs, gate, channels, data_format)
        return _layers.collect(outputs_collections, sc.name, outputs)


@add_arg_scope
def spatial_attention(inputs,  # >60 lines: the slim Args/Raises docstring
                      kernel_size=7,
                      gate_fn=tf.sigmoid,
                      is_training=True,
                      batch_norm_decay=0.99,
                      batch_norm_epsilon=1e-5,
                      zero_init_last=True,
                      weights_initializer=None,
                      weights_regularizer=None,
                      biases_initializer=None,
                      biases_regularizer=None,
                      reuse=None,
                      variables_collections=None,
                      outputs_collections=None,
                      trainable=True,
                      data_format='NHWC',
                      scope=None):
    """CBAM's spatial gate (SAM): ``x * gate_fn(BN(conv([max_c x, mean_c x])))``.

    The k x k convolution maps the 2-channel descriptor (max over channels,
    then mean over channels) to 1 channel with 'SAME' padding and no bias,
    followed by a batch norm with gamma and beta and no activation.
    Params: ``k*k*2 + 2`` (100 for k = 7).

    The map (after ``gate_fn``; [N, H, W, 1] in NHWC, [N, 1, H, W] in NCHW) is
    the op ``<scope>/attention_map`` and is added to the graph collection
    ``ATTENTION_MAPS`` ('attention_maps').

    Args:
      inputs: a 4-D float tensor, [N, H, W, C] (NHWC) or [N, C, H, W] (NCHW);
        N, H and W may be unknown, C must be known.
      kernel_size: odd size k of the k x k convolution (official: 7).
      gate_fn: squashes the normalised map.
      is_training: Python bool or scalar bool tensor. True: the batch norm
        uses batch statistics and adds its moving-average updates to
        ``tf.compat.v1.GraphKeys.UPDATE_OPS``; False: it uses the moving
        averages.
      batch_norm_decay: decay of the moving averages (official 0.99).
      batch_norm_epsilon: batch norm epsilon (official 1e-5).
      zero_init_last: if True the batch norm's gamma starts at 0 (official
        init: the map starts at gate_fn(0)); else at 1.
      weights_initializer: initializer of ``conv/weights``; None means
        He-normal with fan_out, as in the official code.
      weights_regularizer: optional regularizer of the weights.
      biases_initializer: None (default, official): the conv has no bias;
        an initializer adds ``conv/biases`` of shape [1].
      biases_regularizer: optional regularizer of the bias.
      reuse: whether to reuse the variables of ``scope``.
      variables_collections: extra collections for the variables (a list, or
        a dict keyed by 'weights', 'biases', 'beta', 'gamma', 'moving_mean',
        'moving_variance').
      outputs_collections: collections to add the output to.
      trainable: if True the weights, gamma and beta go to TRAINABLE_VARIABLES.
      data_format: 'NHWC' or 'NCHW'.
      scope: variable scope; default 'SpatialAttention'.

    Returns:
      A tensor of the input's shape and dtype.

    Raises:
      ValueError: data_format is not 'NHWC'/'NCHW'; kernel_size is even or not
        positive; inputs are not rank 4 or have unknown channels.
        Also the scope, reuse and channel checks of every block (see
        :mod:`slim_attention.attention`), all before any op exists.
      TypeError: kernel_size is not an integer; is_training is not a bool or
        bool tensor; inputs are not floating point; gate_fn is not callable.
    """
    data_format = _args.check_data_format(data_format)
    kernel_size = _args.check_odd_kernel_size(kernel_size)
    _args.check_callable('gate_fn', gate_fn)
    is_training = _args.check_is_training(is_training)
    dtype, _ = _args.check_inputs(inputs, data_format)
    args = _layers.layer_args(dtype, weights_initializer, weights_regularizer,
                              biases_initializer, biases_regularizer,
                              trainable, variables_collections,
                              _layers.he_normal_initializer('fan_out'))
    _args.check_scope(scope, 'SpatialAttention', reuse,
                      _spatial_variables(kernel_size, args))

    with tf1.variable_scope(scope, 'SpatialAttention', [inputs],
                            reuse=reuse) as sc:
        inputs, x = _args.cast_in(inputs, dtype, args.dtype)
        cax = _args.channel_axis(data_format)
        mean, peak = _fused_ops.mean_and_max(x, cax)
        pooled = tf.stack([peak, mean], axis=-1)  # [N, H, W, 2], official order: max, mean
        logits = _layers.weighted_layer(
            pooled,
            lambda net, weights: tf.nn.conv2d(net, weights, strides=1,
                                              padding='SAME'),
            [kernel_size, kernel_size, 2, 1], args, 'conv')  # [N, H, W, 1]
        logits = _norms.batch_norm(
            logits, is_training, batch_norm_decay, batch_norm_epsilon,
            _norms.gamma_initializer(zero_init_last), args.dtype, trainable,
            variables_collections, 'NHWC')
        attention = _layers.from_nhwc(gate_fn(logits), data_format)
        attention = tf.identity(attention, name='attention_map')
        tf1.add_to_collection(ATTENTION_MAPS, attention)
        outputs = inputs * tf.cast(attention, dtype)
        return _layers.collect(outputs_collections, sc.name, outputs)


@add_arg_scope
def convolutional_block_attention_module(inputs,  # >60 lines: the slim Args/Raises docstring
                                         reduction_ratio=None,
                                         inner_units_ratio=None,
                                         kernel_size=7,
                                         activation_fn=tf.nn.relu,
                                         gate_fn=tf.sigmoid,
                                         is_training=True,
                                         batch_norm_decay=0.99,
                                         batch_norm_epsilon=1e-5,
                                         zero_init_last=True,
                                         index=None,
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
    """CBAM: the channel gate, then the spatial gate.

    Composed from :func:`channel_attention` (scope ``ChannelAttention``) and
    :func:`spatial_attention` (scope ``SpatialAttention``) with every argument
    pinned, so an arg_scope on those two functions does not change CBAM.
    Variables (NHWC or NCHW alike)::

      CBAM/ChannelAttention/fc1/weights  [C, P]    fc1/biases [P]
      CBAM/ChannelAttention/fc2/weights  [P, C]    fc2/biases [C]
      CBAM/SpatialAttention/conv/weights [k, k, 2, 1]
      CBAM/SpatialAttention/BatchNorm/{gamma, beta, moving_mean, moving_variance} [1]

    Params: ``2*C*P + P + C + k*k*2 + 2``. The spatial map is added to the
    collection ``ATTENTION_MAPS`` as ``<scope>/SpatialAttention/attention_map``.

    The VGG tutorial's call ``convolutional_block_attention_module(feature_map,
    index=0, inner_units_ratio=0.5)`` works: the scope defaults to
    ``'cbam_<index>'`` (uniquified: cbam_0, cbam_0_1, ...), and the hidden
    width is ``int(0.5 * C)``.

    Args:
      inputs: a 4-D float tensor, [N, H, W, C] (NHWC) or [N, C, H, W] (NCHW);
        N, H and W may be unknown, C must be known.
      reduction_ratio: hidden width ``P = max(1, C // reduction_ratio)``;
        defaults to 16 when neither ratio is given.
      inner_units_ratio: alternative form, ``P = max(1, int(C * inner_units_ratio))``.
        Give at most one of the two ratios.
      kernel_size: odd size of the spatial gate's convolution (7).
      activation_fn: the channel MLP's hidden activation.
      gate_fn: squashes both gates.
      is_training: Python bool or scalar bool tensor, for the spatial batch
        norm (see :func:`spatial_attention`).
      batch_norm_decay: decay of the spatial batch norm's moving averages.
      batch_norm_epsilon: epsilon of the spatial batch norm.
      zero_init_last: if True the spatial batch norm's gamma starts at 0.
      index: optional non-negative int naming the default scope
        ``'cbam_<index>'`` (the VGG tutorial's form). Give index or scope,
        not both.
      weights_initializer: initializer of all weights; None means the
        official ones (PyTorch default for the MLP, He-normal fan_out for the
        spatial conv).
      weights_regularizer: optional regularizer of all weights.
      biases_initializer: initializer of the MLP biases (None: no MLP
        biases). The spatial conv never has a bias here (official code).
      biases_regularizer: optional regularizer of the MLP biases.
      reuse: whether to reuse the variables of ``scope``.
      variables_collections: extra collections for the variables.
      outputs_collections: collections to add the output to.
      trainable: if True the variables go to TRAINABLE_VARIABLES (moving
        statistics never do).
      data_format: 'NHWC' or 'NCHW'.
      scope: variable scope; default 'CBAM' (or 'cbam_<index>').

    Returns:
      A tensor of the input's shape and dtype.

    Raises:
      ValueError: data_format is not 'NHWC'/'NCHW'; a ratio is not positive
        or finite, or widens the bottleneck (reduction_ratio < 1,
        inner_units_ratio > 1); both ratios are given; kernel_size is even or
        not positive; index is negative; index and scope are both given;
        inputs are not rank 4 or have unknown channels.
        Also the scope, reuse and channel checks of every block (see
        :mod:`slim_attention.attention`), all before any op exists.
      TypeError: a ratio or index has the wrong type; kernel_size is not an
        integer; is_training is not a bool or bool tensor; inputs are not
        floating point; activation_fn or gate_fn is not callable.
    """
    data_format = _args.check_data_format(data_format)
    ratios = _args.check_ratios(reduction_ratio, inner_units_ratio, 16)
    kernel_size = _args.check_odd_kernel_size(kernel_size)
    _args.check_callable('activation_fn', activation_fn)
    _args.check_callable('gate_fn', gate_fn)
    _args.check_is_training(is_training)
    dtype, channels = _args.check_inputs(inputs, data_format)
    default_name = _default_scope(index, scope)
    # The parts' variables (their weights initializers do not matter here).
    args = _layers.layer_args(dtype, weights_initializer, weights_regularizer,
                              biases_initializer, biases_regularizer,
                              trainable, variables_collections)
    _args.check_scope(
        scope, default_name, reuse,
        _layers.mlp_variables(channels, _args.hidden_units(channels, *ratios),
                              args, 'ChannelAttention/')
        + _spatial_variables(kernel_size, args._replace(biases_initializer=None),
                             'SpatialAttention/'))

    with tf1.variable_scope(scope, default_name, [inputs], reuse=reuse) as sc:
        net = channel_attention(
            inputs,
            reduction_ratio=reduction_ratio,
            inner_units_ratio=inner_units_ratio,
            activation_fn=activation_fn,
            gate_fn=gate_fn,
            weights_initializer=weights_initializer,
            weights_regularizer=weights_regularizer,
            biases_initializer=biases_initializer,
            biases_regularizer=biases_regularizer,
            reuse=None,
            variables_collections=variables_collections,
            outputs_collections=None,
            trainable=trainable,
            data_format=data_format,
            scope='ChannelAttention')
        net = spatial_attention(
            net,
            kernel_size=kernel_size,
            gate_fn=gate_fn,
            is_training=is_training,
            batch_norm_decay=batch_norm_decay,
            batch_norm_epsilon=batch_norm_epsilon,
            zero_init_last=zero_init_last,
            weights_initializer=weights_initializer,
            weights_regularizer=weights_regularizer,
            biases_initializer=None,
            biases_regularizer=None,
            reuse=None,
            variables_collections=variables_collections,
            outputs_collections=None,
            trainable=trainable,
            data_format=data_format,
            scope='SpatialAttention')
        return _layers.collect(outputs_collections, sc.name, net)
