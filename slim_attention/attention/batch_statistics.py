"""Batch statistics over several replicas: synchronised (cross-replica) batch norm.

In synchronous data parallelism every replica (worker process) normalises
its share of the global batch. With :func:`cross_replica_sum` active, the
training-mode batch norms built inside it -- the attention blocks' (CBAM's
spatial batch norm, the non-local block's) and, through
:mod:`vgg_patch.training.sync_bn`, ``slim.batch_norm`` -- normalise with the
statistics of the **global** batch instead: each replica sums, per channel,
``sum x``, ``sum x^2`` and its element count, one all-reduce of the three
(concatenated into one vector) adds them over the replicas, and

    mean = S1 / n,    variance = max(S2 / n - mean^2, 0)   (biased)

(one pass: one collective per layer). The sums are of ``x - moving_mean``
where the layer has one (the same in every replica), which keeps the
difference from cancelling when the mean is large against the spread;
docs/distributed.md gives the round-off measured against float64. The moving
averages are then updated with the global mean and the unbiased
``variance * n / (n - 1)``, as one process would.

Without :func:`cross_replica_sum` nothing here is used and the graph is
exactly the one-process graph.
"""
import contextlib

import tensorflow as tf

# fused_batch_norm's least epsilon: it raises a smaller one to this, so the
# synchronised normalisation does too (same output as one process).
FUSED_MIN_EPSILON = 1.001e-5

# (graph, sum_fn) of the open cross_replica_sum contexts, innermost last.
_ACTIVE = []


def builds_in(graph):
    """True when the default graph is ``graph`` or a function (a cond branch) in it."""
    current = tf.compat.v1.get_default_graph()
    while current is not graph and getattr(current, 'outer_graph', None) is not None:
        current = current.outer_graph
    return current is graph


@contextlib.contextmanager
def cross_replica_sum(sum_fn):
    """Builds the training-mode batch norms of the default graph inside with
    cross-replica statistics.

    Args:
      sum_fn: ``sum_fn(vector, weight)`` -> the element-wise sum of the
        float ``vector`` over the replicas, differentiable: its gradient
        must be what the replicas' own loss weighting needs (see
        :mod:`vgg_patch.training.sync_bn`). ``weight`` is this replica's
        image count (a float scalar tensor, the batch norm input's first
        dimension).

    Yields:
      Nothing; the previous ``sum_fn`` (or none) is back on exit.

    Raises:
      TypeError: ``sum_fn`` is not callable.
    """
    if not callable(sum_fn):
        raise TypeError('sum_fn must be callable, got %r' % (sum_fn,))
    entry = (tf.compat.v1.get_default_graph(), sum_fn)
    _ACTIVE.append(entry)
    try:
        yield
    finally:
        _ACTIVE.remove(entry)


def active_sum():
    """The ``sum_fn`` of the innermost :func:`cross_replica_sum` open on the
    default graph (or a function in it), or None."""
    for graph, sum_fn in reversed(_ACTIVE):
        if builds_in(graph):
            return sum_fn
    return None


def global_moments(x, channel_axis, sum_fn, shift=None):
    """``(mean, biased variance, count)`` per channel over every replica's ``x``.

    Args:
      x: a float tensor (rank >= 2), this replica's share.
      channel_axis: the channel axis of ``x`` (the one not reduced).
      sum_fn: see :func:`cross_replica_sum`.
      shift: None, or a [C] value near the mean and the same in every
        replica (the moving mean): the sums are taken of ``x - shift``,
        which keeps ``S2/n - mean^2`` from cancelling when the mean is
        large against the spread (no gradient flows into it).

    Returns:
      ``mean`` and ``variance`` [C] and the global element count per channel
      (a scalar), all of ``x``'s dtype.
    """
    ndims = x.shape.ndims
    axes = [a for a in range(ndims) if a != channel_axis % ndims]
    dtype = x.dtype.base_dtype
    if shift is not None:
        shape = [1] * ndims
        shape[channel_axis] = -1
        shift = tf.stop_gradient(tf.cast(shift, dtype))
        x = x - tf.reshape(shift, shape)
    count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), dtype)
    s1 = tf.reduce_sum(x, axes)
    s2 = tf.reduce_sum(tf.square(x), axes)
    channels = tf.size(s1)
    # One collective for the layer: [sum x (C), sum x^2 (C), count (1)].
    total = sum_fn(tf.concat([s1, s2, tf.reshape(count, [1])], 0),
                   tf.cast(tf.shape(x)[0], dtype))
    n = total[2 * channels]
    mean = total[:channels] / n
    variance = tf.maximum(total[channels:2 * channels] / n - tf.square(mean), 0.0)
    return (mean if shift is None else mean + shift), variance, n


def synchronized_batch_norm(x, scale, offset, epsilon, data_format, sum_fn,
                            shift=None):
    """Training-mode batch norm with the global batch's statistics.

    Args:
      x: a 4-D float tensor, this replica's share.
      scale: gamma [C] (or None).
      offset: beta [C] (or None).
      epsilon: the variance epsilon (raised to ``FUSED_MIN_EPSILON`` for
        float16/bfloat16/float32, as the fused kernel does, so the output is
        one process's).
      data_format: ``'NHWC'`` or ``'NCHW'``.
      sum_fn: see :func:`cross_replica_sum`.
      shift: see :func:`global_moments`.

    Returns:
      ``(y, mean, variance, count)``: ``y`` normalised with the global mean
      and biased variance, those two [C], and the global element count per
      channel (Bessel's correction is the caller's: ``count / (count - 1)``).

    Raises:
      ValueError: ``data_format`` is neither ``'NHWC'`` nor ``'NCHW'``.
    """
    if data_format not in ('NHWC', 'NCHW'):
        raise ValueError("data_format must be 'NHWC' or 'NCHW', got %r" % (data_format,))
    channel_axis = 1 if data_format == 'NCHW' else x.shape.ndims - 1
    dtype = x.dtype.base_dtype
    if dtype in (tf.float16, tf.bfloat16, tf.float32):
        epsilon = max(float(epsilon), FUSED_MIN_EPSILON)
    if dtype in (tf.float16, tf.bfloat16):  # float32 statistics, as the fused kernel
        x = tf.cast(x, tf.float32)
    mean, variance, n = global_moments(x, channel_axis, sum_fn, shift)
    shape = [1] * x.shape.ndims
    shape[channel_axis] = -1
    y = tf.nn.batch_normalization(
        x, tf.reshape(mean, shape), tf.reshape(variance, shape),
        None if offset is None else tf.reshape(tf.cast(offset, x.dtype), shape),
        None if scale is None else tf.reshape(tf.cast(scale, x.dtype), shape), epsilon)
    return tf.cast(y, dtype), mean, variance, n


def bessel(variance, count):
    """``variance * count / (count - 1)`` (the unbiased variance; count 1: unchanged)."""
    return variance * count / tf.maximum(count - 1.0, 1.0)
