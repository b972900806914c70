"""Non-local block, embedded Gaussian.

Wang, Girshick, Gupta, He, "Non-local Neural Networks", CVPR 2018.
https://arxiv.org/abs/1711.07971 ; official code:
facebookresearch/video-nonlocal-net, lib/models/nonlocal_helper.py.

``theta, phi, g = conv1x1(x; C -> Ci)`` (with biases, ``Ci = C // r``);
``A = softmax_j(theta_i . phi_j / sqrt(Ci))``; ``y = A g``;
``out = x + BN(conv1x1(y; Ci -> C))`` with the BN's gamma initialised to 0,
so a freshly inserted block is the identity. With ``subsample=True`` the
input of phi and g is first max-pooled 2x2 with stride 2 (the official
``USE_MAXPOOL``: the pool is applied to x, before the phi and g convs).

Memory grows with ``(H*W)^2`` (the affinity matrix A is [N, HW, HW], or
[N, HW, HW/4] when subsampling): use it on small feature maps.

Faithful to the official code: the 1/sqrt(Ci) scale (``USE_SCALE``), conv
weights N(0, 0.01) with zero biases, BN gamma 0, BN epsilon 1e-5 and momentum
0.9 (decay 0.9).
NOTE: ``subsample`` defaults to False (the official video config pools); the
pool uses 'SAME' padding, identical to the official floor-mode pool for even
H and W and keeping the last row/column for odd ones instead of dropping it.
NOTE: the 1x1 convolutions are matmuls over the channel axis (NCHW needs no
NCHW conv kernel on CPU); the optional max-pool runs in NHWC (transposing in
NCHW) because TF's CPU max-pool has no NCHW kernel.
NOTE: the 1/sqrt(Ci) scale multiplies theta ([N, HW, Ci]) rather than the
affinity ([N, HW, L]) when Ci < L (or L is unknown): the same product up to
float rounding, one pass over a smaller tensor in each direction. The
softmax-and-weighted-sum has a fused gradient
(:func:`slim_attention.attention._fused_ops.softmax_attention`).
NOTE: float16/bfloat16 inputs get float32 variables and a float32 branch (see
:func:`slim_attention.attention._args.compute_dtype`); ``z`` is cast to the
input dtype before the residual addition.
"""
import tensorflow as tf
from tf_slim.ops.arg_scope import add_arg_scope

from slim_attention.attention import _args
from slim_attention.attention import _fused_ops
from slim_attention.attention import _layers
from slim_attention.attention import _norms

tf1 = tf.compat.v1

__all__ = ['non_local_block']


def _embedded_gaussian(x, source, inner, args, data_format):
    """``y = softmax(theta phi^T / sqrt(Ci)) g``, in x's layout ([N, H, W, Ci] or [N, Ci, H, W]).

    theta is a 1x1 convolution of ``x``, phi and g of ``source`` (``x``
    itself, or ``x`` max-pooled), each C -> Ci = ``inner``.
    """
    theta = _layers.conv1x1(x, inner, args, data_format, 'theta')
    phi = _layers.conv1x1(source, inner, args, data_format, 'phi')
    g = _layers.conv1x1(source, inner, args, data_format, 'g')
    shape = tf.shape(x)
    batch = shape[0]
    # The 1/sqrt(Ci) scale goes on the smaller of theta [N, HW, Ci] and the
    # affinity [N, HW, L] (on theta when L is unknown).
    scale = float(inner) ** -0.5
    sizes = [_args.static_dim(source, a) for a in _args.spatial_axes(data_format)]
    scale_theta = None in sizes or inner < sizes[0] * sizes[1]
    if scale_theta:
        theta = theta * scale
    if data_format == 'NHWC':
        theta = tf.reshape(theta, [batch, -1, inner])  # [N, HW, Ci]
        phi = tf.reshape(phi, [batch, -1, inner])  # [N, L, Ci]
        g = tf.reshape(g, [batch, -1, inner])  # [N, L, Ci]
        affinity = tf.matmul(theta, phi, transpose_b=True)  # [N, HW, L]
        y_shape = [batch, shape[1], shape[2], inner]  # [N, H, W, Ci]
    else:
        theta = tf.reshape(theta, [batch, inner, -1])  # [N, Ci, HW]
        phi = tf.reshape(phi, [batch, inner, -1])  # [N, Ci, L]
        g = tf.reshape(g, [batch, inner, -1])  # [N, Ci, L]
        affinity = tf.matmul(theta, phi, transpose_a=True)  # [N, HW, L]
        y_shape = [batch, inner, shape[2], shape[3]]  # [N, Ci, H, W]
    if not scale_theta:
        affinity = affinity * scale
    # [N, HW, Ci] (NHWC) or [N, Ci, HW] (NCHW)
    y = _fused_ops.softmax_attention(affinity, g, transposed=data_format == 'NCHW')
    return tf.reshape(y, y_shape)


@add_arg_scope
def non_local_block(inputs,  # >60 lines: the slim Args/Raises docstring
                    reduction_ratio=None,
                    inner_units_ratio=None,
                    subsample=False,
                    is_training=True,
                    batch_norm_decay=0.9,
                    batch_norm_epsilon=1e-5,
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
    """Embedded-Gaussian non-local block: ``x + BN(W_z (softmax(theta phi^T / sqrt(Ci)) g))``.

    Variables::

      NonLocal/theta/weights [1, 1, C, Ci]   theta/biases [Ci]   (same for phi, g)
      NonLocal/out/weights [1, 1, Ci, C]     out/biases [C]
      NonLocal/BatchNorm/{gamma, beta, moving_mean, moving_variance} [C]

    Params: ``4*C*Ci + 3*Ci + C + 2*C``; for Ci = C/2, ``2*C^2 + 4.5*C``
    (C = 1024: 2,101,760). Memory grows with ``(H*W)^2``.

    Args:
      inputs: a 4-D float tensor, [N, H, W, C] (NHWC) or [N, C, H, W] (NCHW);
        N, H and W may be unknown, C must be known.
      reduction_ratio: inner width ``Ci = max(1, C // reduction_ratio)``;
        defaults to 2 when neither ratio is given.
      inner_units_ratio: alternative form, ``Ci = max(1, int(C * inner_units_ratio))``.
        Give at most one of the two ratios.
      subsample: if True, max-pool x 2x2/stride 2 before the phi and g convs.
      is_training: Python bool or scalar bool tensor. True: the batch norm
        uses batch statistics and adds its moving-average updates to
        ``tf.compat.v1.GraphKeys.UPDATE_OPS``; False: the moving averages.
      batch_norm_decay: decay of the moving averages (official 0.9).
      batch_norm_epsilon: batch norm epsilon (official 1e-5).
      zero_init_last: if True (official) the BN gamma starts at 0, so the
        block starts as the identity; else at 1.
      weights_initializer: initializer of all conv weights; None means the
        official N(0, 0.01).
      weights_regularizer: optional regularizer of the conv weights.
      biases_initializer: initializer of the conv biases; None means no biases.
      biases_regularizer: optional regularizer of the biases.
      reuse: whether to reuse the variables of ``scope``.
      variables_collections: extra collections for the variables.
      outputs_collections: collections to add the output to.
      trainable: if True the weights, biases, gamma and beta go to
        TRAINABLE_VARIABLES.
      data_format: 'NHWC' or 'NCHW'.
      scope: variable scope; default 'NonLocal'.

    Returns:
      A tensor of the input's shape and dtype.

    Raises:
      ValueError: data_format is not 'NHWC'/'NCHW'; a ratio is not positive
        or finite, or widens the bottleneck (reduction_ratio < 1,
        inner_units_ratio > 1); both ratios are given; inputs are not rank 4
        or have unknown channels.
        Also the scope, reuse and channel checks of every block (see
        :mod:`slim_attention.attention`), all before any op exists.
      TypeError: a ratio is not a number; subsample is not a bool;
        is_training is not a bool or bool tensor; inputs are not floating
        point.
    """
    data_format = _args.check_data_format(data_format)
    reduction_ratio, inner_units_ratio = _args.check_ratios(
        reduction_ratio, inner_units_ratio, 2)
    if not isinstance(subsample, bool):
        raise TypeError('subsample must be a bool, got %r' % (subsample,))
    is_training = _args.check_is_training(is_training)
    dtype, channels = _args.check_inputs(inputs, data_format)
    inner = _args.hidden_units(channels, reduction_ratio, inner_units_ratio)
    args = _layers.layer_args(dtype, weights_initializer, weights_regularizer,
                              biases_initializer, biases_regularizer,
                              trainable, variables_collections,
                              tf1.random_normal_initializer(stddev=0.01))
    _args.check_scope(
        scope, 'NonLocal', reuse,
        sum([_layers.layer_variables(name, [1, 1, channels, inner], args)
             for name in ('theta', 'phi', 'g')], [])
        + _layers.layer_variables('out', [1, 1, inner, channels], args)
        + _norms.norm_variables('BatchNorm', channels, args.dtype, moving=True))

    with tf1.variable_scope(scope, 'NonLocal', [inputs], reuse=reuse) as sc:
        inputs, x = _args.cast_in(inputs, dtype, args.dtype)
        source = x
        if subsample:
            source = _layers.from_nhwc(
                tf.nn.max_pool2d(_layers.to_nhwc(x, data_format), ksize=2,
                                 strides=2, padding='SAME'),
                data_format)  # H, W -> ceil(H/2), ceil(W/2)
        y = _embedded_gaussian(x, source, inner, args, data_format)
        z = _layers.conv1x1(y, channels, args, data_format, 'out')
        z = _norms.batch_norm(z, is_training, batch_norm_decay,
                              batch_norm_epsilon,
                              _norms.gamma_initializer(zero_init_last),
                              args.dtype, trainable, variables_collections,
                              data_format)
        outputs = inputs + tf.cast(z, dtype)
        return _layers.collect(outputs_collections, sc.name, outputs)
