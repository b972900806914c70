"""The normalisation layers of the attention blocks: batch norm and layer norm.

Both have slim's variable names (``beta``, ``gamma``; batch norm also
``moving_mean``, ``moving_variance``) and normalise over the channel axis of
``data_format``. They are written with ``model_variable`` and ``tf.nn`` ops,
not ``slim.batch_norm``/``slim.layer_norm``, so that a user's ``arg_scope`` on
those layers cannot change the blocks' math.
"""
import collections

import tensorflow as tf

from slim_attention.attention import _args
from slim_attention.attention import _layers
from slim_attention.attention import batch_statistics

tf1 = tf.compat.v1

# A batch norm's variables, in slim's creation order.
BatchNormVariables = collections.namedtuple(
    'BatchNormVariables', ['beta', 'gamma', 'moving_mean', 'moving_variance'])


def gamma_initializer(zero_init_last):
    """A block's last batch norm gamma: zeros if ``zero_init_last`` (official init), else ones."""
    return tf1.zeros_initializer() if zero_init_last else tf1.ones_initializer()


def norm_variables(scope, channels, dtype, moving=False):
    """The variables of :func:`layer_norm` (``moving=False``) or
    :func:`batch_norm` (``moving=True``) under ``scope``, in creation order."""
    names = ['beta', 'gamma'] + (['moving_mean', 'moving_variance'] if moving else [])
    return [(scope + '/' + n, [channels], dtype) for n in names]


def _offset_and_scale(channels, dtype, gamma_init, trainable,
                      variables_collections):
    """A normalisation layer's trainable ``beta`` (zeros) and ``gamma`` [C], in slim's order."""
    beta = _layers.variable('beta', [channels], dtype, tf1.zeros_initializer(),
                            None, trainable, variables_collections, 'beta')
    gamma = _layers.variable('gamma', [channels], dtype, gamma_init,
                             None, trainable, variables_collections, 'gamma')
    return beta, gamma


def _normalize(x, mean, variance, beta, gamma, epsilon, data_format):
    """``gamma * (x - mean) / sqrt(variance + epsilon) + beta``, beta and gamma per channel."""
    shape = _args.bias_shape(data_format)
    return tf.nn.batch_normalization(
        x, mean, variance, tf.reshape(beta, shape), tf.reshape(gamma, shape),
        epsilon)


def _normalize_per_channel(x, mean, variance, variables, epsilon, data_format):
    """:func:`_normalize` with per-channel [C] statistics."""
    shape = _args.bias_shape(data_format)
    return _normalize(x, tf.reshape(mean, shape), tf.reshape(variance, shape),
                      variables.beta, variables.gamma, epsilon, data_format)


def _is_fused(x):
    """True if ``fused_batch_norm`` has a kernel for x's dtype (not float64)."""
    return x.dtype.base_dtype in (tf.float16, tf.bfloat16, tf.float32)


def _batch_norm_variables(channels, dtype, gamma_init, trainable,
                          variables_collections):
    """Creates a batch norm's :class:`BatchNormVariables` (moving ones not trainable)."""
    beta, gamma = _offset_and_scale(channels, dtype, gamma_init, trainable,
                                    variables_collections)
    moving_mean = _layers.variable('moving_mean', [channels], dtype,
                                   tf1.zeros_initializer(), None, False,
                                   variables_collections, 'moving_mean')
    moving_variance = _layers.variable('moving_variance', [channels], dtype,
                                       tf1.ones_initializer(), None, False,
                                       variables_collections, 'moving_variance')
    return BatchNormVariables(beta, gamma, moving_mean, moving_variance)


def _batch_norm_train(x, variables, epsilon, dtype, data_format):
    """Returns (output, batch mean, unbiased batch variance); the global batch's
    inside :func:`batch_statistics.cross_replica_sum`."""
    sum_fn = batch_statistics.active_sum()
    if sum_fn is not None:
        y, mean, variance, count = batch_statistics.synchronized_batch_norm(
            x, variables.gamma, variables.beta, epsilon, data_format, sum_fn,
            shift=variables.moving_mean)
        return y, mean, batch_statistics.bessel(variance, count)
    if _is_fused(x):
        return tf1.nn.fused_batch_norm(x, variables.gamma, variables.beta,
                                       epsilon=epsilon, data_format=data_format,
                                       is_training=True)
    cax = _args.channel_axis(data_format)
    axes = [a for a in range(4) if a != cax]
    mean, variance = tf.nn.moments(x, axes)
    count = tf.cast(tf.reduce_prod(tf.gather(tf.shape(x), axes)), dtype)
    unbiased = variance * count / tf.maximum(count - 1.0, 1.0)
    return (_normalize_per_channel(x, mean, variance, variables, epsilon,
                                   data_format), mean, unbiased)


def _batch_norm_infer(x, variables, epsilon, data_format):
    """Returns the output normalised with the moving averages."""
    mean = tf.identity(variables.moving_mean)
    variance = tf.identity(variables.moving_variance)
    if _is_fused(x):
        y, _, _ = tf1.nn.fused_batch_norm(
            x, variables.gamma, variables.beta, mean=mean, variance=variance,
            epsilon=epsilon, data_format=data_format, is_training=False)
        return y
    return _normalize_per_channel(x, mean, variance, variables, epsilon,
                                  data_format)


def _update_moving_stats(variables, mean, unbiased, decay, gate=None):
    """The moving-average update; with a bool tensor ``gate``, a no-op (minus
    exactly zero) when it is False."""
    def step(var, value):
        delta = (var - value) * (1.0 - decay)
        if gate is not None:
            # where, not a multiply by 0/1: a non-finite batch
            # statistic in inference must not reach the variable.
            delta = tf.where(gate, delta, tf.zeros_like(delta))
        return tf1.assign_sub(var, delta)
    return tf.group(step(variables.moving_mean, mean),
                    step(variables.moving_variance, unbiased))


def batch_norm(x, is_training, decay, epsilon, gamma_init, dtype,
               trainable, variables_collections, data_format,
               scope='BatchNorm'):
    """Batch normalisation over the channel axis, with slim's variable names.

    Variables ``scope/gamma``, ``scope/beta`` (trainable) and
    ``scope/moving_mean``, ``scope/moving_variance`` (not trainable).
    Training normalises with the batch's mean and (biased) variance; the moving
    averages are updated with the batch mean and the unbiased (Bessel-corrected)
    variance, as PyTorch and TF's fused batch norm do, by ops added to
    ``tf.compat.v1.GraphKeys.UPDATE_OPS``. ``is_training`` may be a Python bool
    or a scalar bool tensor.

    float16/bfloat16/float32 use ``fused_batch_norm`` (one kernel forward and
    backward instead of the moments form's several passes over the tensor, see
    docs/benchmarks.md; in training it normalises with the biased variance and
    returns the unbiased one, exactly what the moving update needs); float64,
    which the fused kernel lacks, uses ``tf.nn.moments`` and
    ``tf.nn.batch_normalization``.

    A bool tensor ``is_training`` builds no ``tf.cond``: both normalisations
    are computed and ``tf.where`` passes the selected one on bit for bit (the
    other gets a zero gradient), and the moving-average update subtracts a
    ``tf.where``-gated step, exactly zero when not training. A TF2 cond
    (``If``/``StatelessIf``) cannot be differentiated once a session has run
    it -- its gradient needs intermediate outputs that the op which ran does
    not have -- and TF1 code builds training ops after a first run (evaluate,
    then train; restore, then fine-tune). The price is the unused
    normalisation, one pass over a map the blocks keep small.

    Inside :func:`batch_statistics.cross_replica_sum` (a cluster trainer)
    training normalises with the global batch's statistics (one all-reduce),
    and a bool tensor ``is_training`` selects by ``tf.cond``, so the
    collective runs in training steps only; that graph is built whole
    before its first run.
    """
    channels = _args.static_dim(x, _args.channel_axis(data_format))
    with tf1.variable_scope(scope):
        variables = _batch_norm_variables(channels, dtype, gamma_init,
                                          trainable, variables_collections)
        if isinstance(is_training, bool) and not is_training:
            return _batch_norm_infer(x, variables, epsilon, data_format)
        gate = None if isinstance(is_training, bool) else is_training
        if gate is not None and batch_statistics.active_sum() is not None:
            # The cross-replica sum is a collective every replica must run:
            # only in training steps, so a cond, not both branches.
            y, mean, unbiased = tf.cond(
                gate, lambda: _batch_norm_train(x, variables, epsilon, dtype,
                                                data_format),
                lambda: (_batch_norm_infer(x, variables, epsilon, data_format),
                         tf.identity(variables.moving_mean),
                         tf.identity(variables.moving_variance)))
        else:
            y, mean, unbiased = _batch_norm_train(x, variables, epsilon, dtype,
                                                  data_format)
            if gate is not None:
                y = tf.where(gate, y,
                             _batch_norm_infer(x, variables, epsilon, data_format))
        tf1.add_to_collection(tf1.GraphKeys.UPDATE_OPS,
                              _update_moving_stats(variables, mean, unbiased,
                                                   decay, gate))
        return y


def layer_norm(x, epsilon, dtype, trainable, variables_collections,
               data_format, scope='LayerNorm'):
    """LayerNorm over the channel axis of a [N,1,1,C] (or [N,C,1,1]) tensor.

    Variables ``scope/gamma`` (ones) and ``scope/beta`` (zeros), as slim.layer_norm.
    """
    cax = _args.channel_axis(data_format)
    channels = _args.static_dim(x, cax)
    with tf1.variable_scope(scope):
        beta, gamma = _offset_and_scale(channels, dtype, tf1.ones_initializer(),
                                        trainable, variables_collections)
        mean, variance = tf.nn.moments(x, [cax], keepdims=True)
        return _normalize(x, mean, variance, beta, gamma, epsilon, data_format)
