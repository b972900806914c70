"""ECA: Efficient Channel Attention.

Wang, Wu, Zhu, Li, Zuo, Hu, "ECA-Net: Efficient Channel Attention for Deep
Convolutional Neural Networks", CVPR 2020. https://arxiv.org/abs/1910.03151 ;
official code: BangguWu/ECANet, models/eca_module.py.

``z = mean_{H,W} x`` (a length-C sequence per image); a 1-D convolution of
kernel k across the channels ('SAME' zero padding, no bias);
``out = x * sigmoid(conv(z))``. The adaptive kernel is paper Eq. 12 with
gamma = 2, b = 1 (see :func:`adaptive_kernel_size`); the released
ECA-ResNet-50 uses k = 3, 5, 5, 7 per stage, which an explicit
``kernel_size`` gives.

NOTE: the conv weights default to PyTorch's default Conv1d init
(U(+-1/sqrt(k))), which the official code leaves in place.
NOTE: float16/bfloat16 inputs get float32 variables and a float32 gate (see
:func:`slim_attention.attention._args.compute_dtype`).
"""
import math

import tensorflow as tf
from tf_slim.ops.arg_scope import add_arg_scope

from slim_attention.attention import _args
from slim_attention.attention import _fused_ops
from slim_attention.attention import _layers

tf1 = tf.compat.v1

__all__ = ['efficient_channel_attention', 'adaptive_kernel_size']


def adaptive_kernel_size(channels, gamma=2, b=1):
    """ECA's adaptive kernel size, paper Eq. 12: the odd ``|(log2(C) + b) / gamma|``.

    ``t = int(abs((log2(C) + b) / gamma))``; ``k = t if t is odd else t + 1``.
    C = 64, 256, 512, 1024, 2048 give 3, 5, 5, 5, 7.

    Args:
      channels: the channel count C (a positive int).
      gamma: the paper's gamma (2).
      b: the paper's b (1).

    Returns:
      The odd kernel size k (>= 1).

    Raises:
      ValueError: channels is not a positive int.
    """
    if isinstance(channels, bool) or not isinstance(channels, int) \
            or channels <= 0:
        raise ValueError('channels must be a positive int, got %r' % (channels,))
    t = int(abs((math.log2(channels) + b) / gamma))
    return t if t % 2 else t + 1


@add_arg_scope
def efficient_channel_attention(inputs,  # >60 lines: the slim Args/Raises docstring
                                kernel_size=None,
                                gate_fn=tf.sigmoid,
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
    """ECA: ``x * gate_fn(conv1d_k(mean_{H,W} x))`` across channels.

    Variables: ``ECA/conv/weights`` [k, 1, 1] (tf.nn.conv1d's filter layout).
    Params: ``k``.

    Args:
      inputs: a 4-D float tensor, [N, H, W, C] (NHWC) or [N, C, H, W] (NCHW);
        N, H and W may be unknown, C must be known.
      kernel_size: odd kernel size k; None (default) means the adaptive size
        of paper Eq. 12 (:func:`adaptive_kernel_size`).
      gate_fn: squashes the convolved descriptor (sigmoid).
      weights_initializer: initializer of the conv weights; None means
        PyTorch's default Conv1d init.
      weights_regularizer: optional regularizer of the weights.
      biases_initializer: None (default, official): no bias; an initializer
        adds ``conv/biases`` of shape [1].
      biases_regularizer: optional regularizer of the bias.
      reuse: whether to reuse the variables of ``scope``.
      variables_collections: extra collections for the variables.
      outputs_collections: collections to add the output to.
      trainable: if True the variables go to TRAINABLE_VARIABLES.
      data_format: 'NHWC' or 'NCHW'.
      scope: variable scope; default 'ECA'.

    Returns:
      A tensor of the input's shape and dtype.

    Raises:
      ValueError: data_format is not 'NHWC'/'NCHW'; kernel_size is even or not
        positive; inputs are not rank 4 or have unknown channels.
        Also the scope, reuse and channel checks of every block (see
        :mod:`slim_attention.attention`), all before any op exists.
      TypeError: kernel_size is not an integer; inputs are not floating
        point; gate_fn is not callable.
    """
    data_format = _args.check_data_format(data_format)
    if kernel_size is not None:
        kernel_size = _args.check_odd_kernel_size(kernel_size)
    _args.check_callable('gate_fn', gate_fn)
    dtype, channels = _args.check_inputs(inputs, data_format)
    if kernel_size is None:
        kernel_size = adaptive_kernel_size(channels)
    args = _layers.layer_args(dtype, weights_initializer, weights_regularizer,
                              biases_initializer, biases_regularizer,
                              trainable, variables_collections,
                              _layers.torch_default_initializer())
    _args.check_scope(scope, 'ECA', reuse,
                      _layers.layer_variables('conv', [kernel_size, 1, 1], args))

    with tf1.variable_scope(scope, 'ECA', [inputs], reuse=reuse) as sc:
        inputs, x = _args.cast_in(inputs, dtype, args.dtype)
        squeeze = _fused_ops.mean_pool(x, _args.spatial_axes(data_format))  # [N, C]
        sequence = tf.expand_dims(squeeze, -1)  # [N, C, 1]: C steps, 1 feature
        logits = _layers.weighted_layer(
            sequence,
            lambda net, weights: tf.nn.conv1d(net, weights, stride=1,
                                              padding='SAME'),
            [kernel_size, 1, 1], args, 'conv')  # [N, C, 1]
        outputs = _layers.scale_channels(inputs, gate_fn(logits), channels,
                                         data_format)
        return _layers.collect(outputs_collections, sc.name, outputs)
