"""Fused pooling and softmax ops of the attention blocks, with their registered gradients.

Each op's forward pass is the plain TensorFlow ops; its gradient is written
by hand to make fewer passes over the full-size tensors than the plain ops'
gradients (docs/benchmarks.md says by how much, and why).

The gradients are registered under fixed names (gradient_override_map on an
IdentityN that carries the results and the inputs they need), not as
tf.custom_gradient closures: a graph exported with export_meta_graph and
imported in another process (after ``import slim_attention``) can still be
differentiated, because the gradient needs nothing but the op's inputs. In
eager mode the override does not apply and IdentityN passes gradients
through to the plain ops, which give the same values.
"""
import tensorflow as tf

from slim_attention.attention import _args
from slim_attention.attention import _layers

tf1 = tf.compat.v1

_MEAN_POOL_GRAD = 'SlimAttentionMeanPool'
_MEAN_MAX_POOL_GRAD = 'SlimAttentionMeanMaxPool'
_SOFTMAX_ATTENTION_GRAD = 'SlimAttentionSoftmaxAttention'
_ATTENTION_POOL_GRAD = 'SlimAttentionAttentionPool'


def _register_gradient(name, fn):
    try:
        tf.RegisterGradient(name)(fn)
    except KeyError:  # already registered (the module was reloaded)
        pass


def _pool_geometry(x, axes):
    """``(kept, n)``: x's dynamic shape with 1 on ``axes`` (an int32 tensor),
    and the number of elements reduced, in x's dtype."""
    shape = tf.shape(x)
    kept = tf.tensor_scatter_nd_update(shape, tf.expand_dims(axes, 1),
                                       tf.ones_like(axes))
    n = tf.cast(tf.reduce_prod(tf.gather(shape, axes)), x.dtype)
    return kept, n


def _mean_pool_grad(op, d_mean, *unused):
    """IdentityN([mean, x, axes]) -> the mean's gradient w.r.t. x, broadcast once."""
    del unused
    _, x, axes = op.inputs
    if d_mean is None:
        return [None, None, None]
    kept, n = _pool_geometry(x, axes)
    return [None, tf.broadcast_to(tf.reshape(d_mean, kept) / n, tf.shape(x)), None]


def _mean_max_pool_grad(op, d_mean, d_max, *unused):
    """IdentityN([mean, max_kept, x, axes]) -> both reductions' gradient w.r.t.
    x in one where(): the mean's spread evenly, the max's split evenly between
    tied maxima (TensorFlow's own rule)."""
    del unused
    _, peak, x, axes = op.inputs
    if d_mean is None and d_max is None:
        return [None] * 4
    kept, n = _pool_geometry(x, axes)
    spread = tf.zeros(kept, x.dtype) if d_mean is None else tf.reshape(d_mean, kept) / n
    if d_max is None:
        return [None, None, tf.broadcast_to(spread, tf.shape(x)), None]
    is_max = tf.equal(x, peak)
    ties = tf.reduce_sum(tf.cast(is_max, x.dtype), axes, keepdims=True)
    dx = tf.where(is_max, spread + tf.reshape(d_max, kept) / ties, spread)
    return [None, None, dx, None]


def _softmax_attention_grad(op, d_y, *unused):
    """IdentityN([y, logits, values, attention, transposed]) -> gradients of
    ``y = softmax(logits) @ values`` w.r.t. logits and values.

    The softmax gradient ``A * (dA - rowsum(dA * A))`` needs the row sums of
    the [N, M, L] product ``dA * A``; since ``dA = dy values^T`` they equal
    ``rowsum(dy * y)``, a product of [N, M, C] tensors (the identity
    FlashAttention's backward pass uses). That form is used when C < L (the
    usual case: a non-local block's Ci against its H*W); otherwise, or when L
    or C is unknown, the direct one. Same values either way.
    """
    del unused
    y, _, values, attention, transposed = op.inputs
    if d_y is None:
        return [None] * 5
    # ``transposed`` is a Const the block wrote: its value is known here.
    transposed = bool(tf.get_static_value(transposed))
    if transposed:  # values [N, C, L], y [N, C, M]
        d_att = tf.matmul(d_y, values, transpose_a=True)  # [N, M, L]
        d_values = tf.matmul(d_y, attention)  # [N, C, L]
        width, length = _args.static_dim(values, 1), _args.static_dim(values, 2)
    else:  # values [N, L, C], y [N, M, C]
        d_att = tf.matmul(d_y, values, transpose_b=True)  # [N, M, L]
        d_values = tf.matmul(attention, d_y, transpose_a=True)  # [N, L, C]
        width, length = _args.static_dim(values, 2), _args.static_dim(values, 1)
    if width is not None and length is not None and width < length:
        row_dot = tf.reduce_sum(d_y * y, 1 if transposed else -1)  # [N, M]
        row_dot = tf.expand_dims(row_dot, -1)  # [N, M, 1]
    else:
        row_dot = tf.reduce_sum(d_att * attention, -1, keepdims=True)  # [N, M, 1]
    d_logits = attention * (d_att - row_dot)
    return [None, d_logits, d_values, None, None]


def _attention_pool_grad(op, d_context, *unused):
    """IdentityN([context, x, logits, weights, kernel, nchw]) -> gradients of
    GC's attention pooling ``context = softmax(logits) . x`` w.r.t. x and the
    logits, where ``logits = conv1x1(stop_gradient(x), kernel) (+ bias)``.

    x gets both of its terms at once, the pooling's ``weights (x) d_context``
    and the mask convolution's ``d_logits (x) kernel``, as one batched matmul
    with an inner dimension of 2, instead of a Conv2DBackpropInput and a
    matmul gradient that tf.gradients would then add up (with the residual
    term, an AddN of three full-size tensors).
    """
    del unused
    _, x, _, weights, kernel, nchw = op.inputs  # weights [N, HW], kernel [1,1,C,1]
    if d_context is None:
        return [None] * 6
    nchw = bool(tf.get_static_value(nchw))  # a Const the block wrote
    batch = tf.shape(x)[0]
    channels = _args.static_dim(x, 1 if nchw else -1)
    kernel = tf.tile(tf.reshape(kernel, [1, 1, channels]), [batch, 1, 1])  # [N, 1, C]
    d_context = tf.reshape(d_context, [batch, 1, channels])  # [N, 1, C]
    if nchw:
        flat = tf.reshape(x, [batch, channels, -1])  # [N, C, HW]
        d_weights = tf.matmul(d_context, flat)[:, 0, :]  # [N, HW]
    else:
        flat = tf.reshape(x, [batch, -1, channels])  # [N, HW, C]
        d_weights = tf.matmul(d_context, flat, transpose_b=True)[:, 0, :]  # [N, HW]
    d_logits = weights * (d_weights - tf.reduce_sum(d_weights * weights, -1,
                                                    keepdims=True))  # softmax
    left = tf.stack([weights, d_logits], 1)  # [N, 2, HW]
    right = tf.concat([d_context, kernel], 1)  # [N, 2, C]
    if nchw:
        d_x = tf.matmul(right, left, transpose_a=True)  # [N, C, HW]
    else:
        d_x = tf.matmul(left, right, transpose_a=True)  # [N, HW, C]
    return [None, tf.reshape(d_x, tf.shape(x)), d_logits, None, None, None]


_register_gradient(_MEAN_POOL_GRAD, _mean_pool_grad)
_register_gradient(_ATTENTION_POOL_GRAD, _attention_pool_grad)
_register_gradient(_MEAN_MAX_POOL_GRAD, _mean_max_pool_grad)
_register_gradient(_SOFTMAX_ATTENTION_GRAD, _softmax_attention_grad)


def _axes(x, axis):
    """``axis`` (an int or ints, possibly negative) as non-negative ints."""
    rank = _args.static_shape(x).rank  # the blocks' inputs have a known rank (check_inputs)
    return [a % rank for a in ([axis] if isinstance(axis, int) else axis)]


def mean_pool(x, axis):
    """``reduce_mean(x, axis)`` with a one-pass gradient.

    TensorFlow's gradient of a mean tiles the upstream gradient to the input's
    shape and then divides the full-size tile by the count; here the small
    gradient is divided first and broadcast once (one full-size write instead
    of three full-size passes). Same values as TensorFlow's.

    Args:
      x: a float tensor of known rank.
      axis: an int or list of ints, the axes to reduce.

    Returns:
      ``x``'s mean over ``axis``, of ``x``'s shape without ``axis``.
    """
    axes = _axes(x, axis)
    mean = tf.reduce_mean(x, axes)
    with tf1.get_default_graph().gradient_override_map({'IdentityN': _MEAN_POOL_GRAD}):
        return tf.identity_n([mean, x, tf.constant(axes, tf.int32)])[0]


def mean_and_max(x, axis):
    """``(reduce_mean(x, axis), reduce_max(x, axis))`` with one fused gradient.

    The values are exactly the two reductions'. The gradient is TensorFlow's
    (the mean's spread evenly, the max's split evenly between tied maxima)
    computed in one pass, ``where(x == max, d_mean / n + d_max / ties,
    d_mean / n)``, instead of the two reductions' separate gradients (Tile,
    Equal, Cast, RealDiv, Mul on the full input). It also leaves ``x`` with
    one gradient term fewer: with three (mean, max and a gating multiply)
    tf.gradients sums three full-size tensors, which Grappler's memory
    optimizer may lower to a TemporaryVariable and three locked AssignAdds,
    slower than the AddN it replaces (docs/benchmarks.md, "What was found").

    Args:
      x: a float tensor of known rank.
      axis: an int or list of ints, the axes to reduce.

    Returns:
      ``(mean, max)``, each of ``x``'s shape without ``axis``.
    """
    axes = _axes(x, axis)
    mean = tf.reduce_mean(x, axes)
    peak = tf.reduce_max(x, axes, keepdims=True)
    with tf1.get_default_graph().gradient_override_map({'IdentityN': _MEAN_MAX_POOL_GRAD}):
        mean, peak = tf.identity_n([mean, peak, x, tf.constant(axes, tf.int32)])[:2]
    return mean, tf.squeeze(peak, axes)


def softmax_attention(logits, values, transposed=False):
    """``softmax(logits, -1)`` applied to ``values``, with a lighter gradient.

    ``logits`` is [N, M, L]. With ``transposed=False`` ``values`` is [N, L, C]
    and the result ``softmax(logits) @ values`` is [N, M, C]; with
    ``transposed=True`` ``values`` is [N, C, L] and the result
    ``values @ softmax(logits)^T`` is [N, C, M]. The forward pass is those two
    ops; the gradient (see :func:`_softmax_attention_grad`) skips two passes
    over the [N, M, L] matrix that TensorFlow's softmax gradient makes.

    Returns:
      The result, [N, M, C] or [N, C, M].
    """
    attention = tf.nn.softmax(logits, axis=-1)
    if transposed:
        y = tf.matmul(values, attention, transpose_b=True)
    else:
        y = tf.matmul(attention, values)
    with tf1.get_default_graph().gradient_override_map(
            {'IdentityN': _SOFTMAX_ATTENTION_GRAD}):
        return tf.identity_n([y, logits, values, attention,
                              tf.constant(bool(transposed))])[0]


def attention_pool(x, mask_args, data_format, scope='conv_mask'):
    """GC's attention pooling: ``softmax_HW(conv1x1(x; C -> 1)) . x``.

    The mask convolution has slim's variables ``scope/weights`` [1, 1, C, 1]
    and ``scope/biases`` [1] (per ``mask_args``, a :class:`slim_attention.attention._layers.LayerArgs`). The
    forward pass is the plain ops; the gradient w.r.t. ``x`` is fused (see
    :func:`_attention_pool_grad`), the mask's variables get theirs from the
    convolution's own gradient.

    Returns:
      The context, [N, 1, C] (NHWC) or [N, C, 1] (NCHW).
    """
    kernels = []

    def mask_conv(net, kernel):
        kernels.append(kernel)
        return _layers.pointwise(net, kernel, data_format)

    channels = _args.static_dim(x, _args.channel_axis(data_format))
    # stop_gradient: x's gradient through the mask comes from the fused gradient.
    logits = _layers.weighted_layer(tf.stop_gradient(x), mask_conv,
                                    [1, 1, channels, 1], mask_args, scope,
                                    data_format)  # [N,H,W,1] / [N,1,H,W]
    batch = tf.shape(x)[0]
    logits = tf.reshape(logits, [batch, -1])  # [N, HW]
    weights = tf.nn.softmax(logits)  # [N, HW]
    if data_format == 'NHWC':
        flat = tf.reshape(x, [batch, -1, channels])  # [N, HW, C]
        context = tf.matmul(weights[:, None, :], flat)  # [N, 1, C]
    else:
        flat = tf.reshape(x, [batch, channels, -1])  # [N, C, HW]
        context = tf.matmul(flat, weights[:, :, None])  # [N, C, 1]
    with tf1.get_default_graph().gradient_override_map({'IdentityN': _ATTENTION_POOL_GRAD}):
        return tf.identity_n([context, x, logits, weights,
                              tf.convert_to_tensor(kernels[0]),
                              tf.constant(data_format == 'NCHW')])[0]
