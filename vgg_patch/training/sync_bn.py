"""Synchronised (cross-worker) batch norm for the trainer on a cluster.

On a cluster every worker builds the network on its share of the global
batch. Inside :func:`synchronized_batch_norm` the network's training-mode
batch norms normalise with the **global** batch's statistics, so N workers
train the weights (and moving averages) one process trains on the whole
batch, within float round-off:

* the attention blocks' batch norm (CBAM's spatial batch norm in VGG19+CBAM
  and in the slim nets, the non-local block's) through
  :func:`slim_attention.attention.batch_statistics.cross_replica_sum`;
* ``slim.batch_norm`` (every ResNet and Inception of ``slim-attention-train``):
  its fused training call (``nn.fused_batch_norm`` inside tf-slim's
  ``batch_norm``, which every slim net here takes: 4-D inputs, ``fused``
  None or True) is replaced while the network is built, so the variables,
  scopes, moving-average updates and the inference path stay tf-slim's own.
  An ``arg_scope`` cannot do it: ResNet v2 calls ``batch_norm`` directly.

Per layer, one ``CollectiveReduceV2`` forward (``2C + 1`` floats: sum x,
sum x^2, count) and one backward (the same size); see docs/distributed.md.

The gradient. The trainer's step gradient is ``sum_r c_r g_r / C``: worker
r's gradient ``g_r`` of its share's mean loss ``L_r``, times its image count
``c_r``, summed, over the global count ``C`` -- the gradient of ``L = sum_r
c_r L_r / C``. With global statistics every ``L_q`` depends on worker r's
sums ``s_r`` through their total ``S``: ``dL/ds_r = sum_q (c_q/C) dL_q/dS``.
Worker r's backward pass must give ``s_r`` that value divided by its own
``c_r / C`` (the trainer multiplies it back), that is ``sum_q c_q dy_q /
c_r`` with ``dy_q = dL_q/dS`` on worker q:
:meth:`vgg_patch.training.replicas.Collectives.weighted_sum`.
"""
import contextlib
import logging

logger = logging.getLogger("vgg_patch.train")


def _fused_replacement(original, collectives, synced):
    """A ``fused_batch_norm`` whose training calls in the current graph use the
    global batch's statistics; every other call goes to ``original``.

    Like the fused kernel on the whole batch it returns the output, the
    batch mean and the unbiased (Bessel-corrected, global count) variance,
    which tf-slim's batch norm (tf-keras's legacy layer or its own fused
    path) puts into the moving averages as they are.
    """
    import tensorflow as tf
    from slim_attention.attention import batch_statistics
    graph = tf.compat.v1.get_default_graph()

    def fused_batch_norm(x, scale, offset, mean=None, variance=None, epsilon=0.001,
                         data_format="NHWC", is_training=True, name=None,
                         exponential_avg_factor=1.0):
        if not batch_statistics.builds_in(graph) or is_training is not True:
            return original(x, scale, offset, mean=mean, variance=variance,
                            epsilon=epsilon, data_format=data_format,
                            is_training=is_training, name=name,
                            exponential_avg_factor=exponential_avg_factor)
        synced.append(tf.compat.v1.get_variable_scope().name)
        y, batch_mean, batch_variance, count = batch_statistics.synchronized_batch_norm(
            x, scale, offset, epsilon, data_format, collectives.weighted_sum,
            shift=mean)  # tf-keras passes the moving mean; tf-slim None
        batch_variance = batch_statistics.bessel(batch_variance, count)
        factor = 1.0 if exponential_avg_factor is None else exponential_avg_factor
        if factor != 1.0:  # the fused kernel's running averages (tf-keras, eager-style)
            batch_mean = (1.0 - factor) * mean + factor * batch_mean
            batch_variance = (1.0 - factor) * variance + factor * batch_variance
        return y, batch_mean, batch_variance
    return fused_batch_norm


@contextlib.contextmanager
def synchronized_batch_norm(collectives):
    """Builds the network inside with cross-worker batch statistics.

    Args:
      collectives: the cluster's :class:`vgg_patch.training.replicas.Collectives`
        (every worker builds the same network in the same order, so the
        collectives' instance keys agree).

    Yields:
      A list, filled with the variable scopes of the slim batch norms
      synchronised as they are built.
    """
    import tensorflow as tf
    from tf_slim.layers import layers as slim_layers
    from slim_attention.attention import batch_statistics
    # tf-slim's batch_norm hands 4-D inputs with default settings to
    # tf-keras's BatchNormalization (tf.compat.v1.nn.fused_batch_norm), the
    # rest to its own fused path (tensorflow.python.ops.nn.fused_batch_norm).
    patched = [tf.compat.v1.nn, slim_layers.nn]
    originals = [module.fused_batch_norm for module in patched]
    synced = []
    for module, original in zip(patched, originals):
        module.fused_batch_norm = _fused_replacement(original, collectives, synced)
    try:
        with batch_statistics.cross_replica_sum(collectives.weighted_sum):
            yield synced
    finally:
        for module, original in zip(patched, originals):
            module.fused_batch_norm = original
    logger.debug("synchronised batch norm in %d slim layers: %s", len(synced), synced)
