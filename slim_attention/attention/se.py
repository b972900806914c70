"""Squeeze-and-Excitation.

Hu, Shen, Albanie, Sun, Wu, "Squeeze-and-Excitation Networks", CVPR 2018 /
TPAMI 2019. https://arxiv.org/abs/1709.01507 ; official code:
hujie-frank/SENet (Caffe prototxt).

``z = mean_{H,W} x``; ``g = sigmoid(fc2(relu(fc1(z))))``; ``out = x * g``, with
biases on both FC layers as in the official prototxt.

NOTE: the official release has no training prototxt with fillers; the FC
weights default to PyTorch's default Linear init (U(+-1/sqrt(fan_in))), as in
the reference PyTorch ports and timm, and the biases to zero.
NOTE: float16/bfloat16 inputs get float32 variables and a float32 gate (see
:func:`slim_attention.attention._args.compute_dtype`).
"""
import tensorflow as tf
from tf_slim.ops.arg_scope import add_arg_scope

from slim_attention.attention import _args
from slim_attention.attention import _fused_ops
from slim_attention.attention import _layers

tf1 = tf.compat.v1

__all__ = ['squeeze_and_excitation']


@add_arg_scope
def squeeze_and_excitation(inputs,  # >60 lines: the slim Args/Raises docstring
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
    """Squeeze-and-excitation: ``x * gate_fn(fc2(activation_fn(fc1(mean_{H,W} x))))``.

    Variables: ``SqueezeExcitation/fc1/weights`` [C, P], ``fc1/biases`` [P],
    ``fc2/weights`` [P, C], ``fc2/biases`` [C]. Params: ``2*C*P + P + C``.
    In a ResNet bottleneck it goes on the residual branch after the last
    conv + BN, before the addition with the shortcut.

    Args:
      inputs: a 4-D float tensor, [N, H, W, C] (NHWC) or [N, C, H, W] (NCHW);
        N, H and W may be unknown, C must be known.
      reduction_ratio: hidden width ``P = max(1, C // reduction_ratio)``;
        defaults to 16 when neither ratio is given.
      inner_units_ratio: alternative form, ``P = max(1, int(C * inner_units_ratio))``.
        Give at most one of the two ratios.
      activation_fn: the hidden activation (relu).
      gate_fn: squashes the excitation into the gate (sigmoid).
      weights_initializer: initializer of both FC weights; None means
        PyTorch's default Linear init.
      weights_regularizer: optional regularizer of the weights.
      biases_initializer: initializer of the biases; None means no biases.
      biases_regularizer: optional regularizer of the biases.
      reuse: whether to reuse the variables of ``scope``.
      variables_collections: extra collections for the variables (a list, or
        a dict keyed by 'weights'/'biases').
      outputs_collections: collections to add the output to.
      trainable: if True the variables go to TRAINABLE_VARIABLES.
      data_format: 'NHWC' or 'NCHW'.
      scope: variable scope; default 'SqueezeExcitation'.

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
    _args.check_scope(scope, 'SqueezeExcitation', reuse,
                      _layers.mlp_variables(channels, units, args))

    with tf1.variable_scope(scope, 'SqueezeExcitation', [inputs],
                            reuse=reuse) as sc:
        inputs, x = _args.cast_in(inputs, dtype, args.dtype)
        squeeze = _fused_ops.mean_pool(x, _args.spatial_axes(data_format))  # [N, C]

        gate = gate_fn(_layers.mlp(squeeze, units, activation_fn, args))  # [N, C]
        outputs = _layers.scale_channels(inputs, gate, channels, data_format)
        return _layers.collect(outputs_collections, sc.name, outputs)
