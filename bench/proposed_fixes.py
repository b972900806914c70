"""Speed fixes proposed for slim_attention, tried here on a patched copy.

Status: applied to slim_attention in commit 1f3d2cd (after the measurements in
docs/benchmarks.md's first blocks table); ``applied()`` then changes nothing
that matters, and ``--proposed`` times the same code twice.

bench/ may not edit slim_attention, so the blocks case can time "slim_attention
as it is" against "slim_attention with these fixes" side by side
(``python bench/run.py --only blocks --proposed``). Each function is a drop-in
replacement for the helper of the same name in slim_attention/attention/_utils.py:

1. ``pointwise``: a 1x1 convolution was ``tf.einsum('nhwc,cd->nhwd')``; TF's
   (oneDNN) Einsum kernel and its gradient Einsums are 2-3x slower on CPU than a
   plain ``tf.nn.conv2d`` 1x1 (NHWC), which is what tutorials call. NCHW uses a
   batched matmul (no NCHW conv kernel on CPU).
2. ``batch_norm``: the moments + ``tf.nn.batch_normalization`` form (4 passes
   over the tensor forward, more backward) becomes ``fused_batch_norm``. In
   training the fused op normalises with the biased batch variance and returns
   the Bessel-corrected one, which is exactly what the moving-average update
   used; variables, names, UPDATE_OPS and both is_training forms are unchanged.
3. global_context's attention pooling ``tf.einsum('nlc,nl->nc')`` becomes a
   batched matmul ``[N,1,HW] @ [N,HW,C]`` (and its NCHW mirror).

Outputs and gradients agree with the unpatched blocks to float32 round-off
(checked by the blocks case and test_bench.py).
"""
import contextlib
import inspect
import sys
import textwrap

import tensorflow as tf

tf1 = tf.compat.v1


def pointwise(x, weights, data_format):
    """1x1 convolution; ``weights`` is [1, 1, Cin, Cout]."""
    if data_format == 'NHWC':
        return tf.nn.conv2d(x, weights, strides=1, padding='VALID')
    cin, cout = int(weights.shape[2]), int(weights.shape[3])
    shape = tf.shape(x)
    kernel = tf.reshape(weights, [cin, cout])
    flat = tf.reshape(x, [shape[0], cin, -1])  # [N, Cin, HW]
    out = tf.matmul(kernel, flat, transpose_a=True)  # [N, Cout, HW]
    return tf.reshape(out, [shape[0], cout, shape[2], shape[3]])


def make_batch_norm(utils):
    """A fused ``batch_norm`` for the given ``_utils`` module (same signature)."""

    original = utils.batch_norm

    def batch_norm(x, is_training, decay, epsilon, gamma_initializer, dtype,
                   trainable, variables_collections, data_format,
                   scope='BatchNorm'):
        if x.dtype.base_dtype not in (tf.float16, tf.bfloat16, tf.float32):
            # The fused kernel has no float64: keep the moments form there.
            return original(x, is_training, decay, epsilon, gamma_initializer, dtype,
                            trainable, variables_collections, data_format, scope)
        cax = utils.channel_axis(data_format)
        channels = int(x.shape[cax])
        with tf1.variable_scope(scope):
            beta, gamma = utils._offset_and_scale(  # pylint: disable=protected-access
                channels, dtype, gamma_initializer, trainable, variables_collections)
            moving_mean = utils.variable('moving_mean', [channels], dtype,
                                         tf1.zeros_initializer(), None, False,
                                         variables_collections, 'moving_mean')
            moving_variance = utils.variable('moving_variance', [channels], dtype,
                                             tf1.ones_initializer(), None, False,
                                             variables_collections, 'moving_variance')

            def train_bn():
                # Normalises with the biased variance; returns the unbiased one.
                return tf1.nn.fused_batch_norm(x, gamma, beta, epsilon=epsilon,
                                               data_format=data_format,
                                               is_training=True)

            def infer_bn():
                y, _, _ = tf1.nn.fused_batch_norm(
                    x, gamma, beta, mean=moving_mean, variance=moving_variance,
                    epsilon=epsilon, data_format=data_format, is_training=False)
                return y, tf.identity(moving_mean), tf.identity(moving_variance)

            def update(mean, unbiased):
                return tf.group(
                    tf1.assign_sub(moving_mean, (moving_mean - mean) * (1.0 - decay)),
                    tf1.assign_sub(moving_variance,
                                   (moving_variance - unbiased) * (1.0 - decay)))

            if isinstance(is_training, bool):
                if is_training:
                    y, mean, unbiased = train_bn()
                    tf1.add_to_collection(tf1.GraphKeys.UPDATE_OPS,
                                          update(mean, unbiased))
                    return y
                return infer_bn()[0]
            y, mean, unbiased = tf.cond(is_training, train_bn, infer_bn)

            def do_update():
                with tf.control_dependencies([update(mean, unbiased)]):
                    return tf.constant(True)

            tf1.add_to_collection(
                tf1.GraphKeys.UPDATE_OPS,
                tf.cond(is_training, do_update, lambda: tf.constant(False)))
            return y

    return batch_norm


_GC_LINES = (
    ("tf.einsum('nlc,nl->nc', flat, weights)",
     "tf.reshape(tf.matmul(weights[:, None, :], flat), [batch, channels])"),
    ("tf.einsum('ncl,nl->nc', flat, weights)",
     "tf.reshape(tf.matmul(flat, weights[:, :, None]), [batch, channels])"),
)


def _patched_global_context(gc_module):
    """global_context re-built from its source with the einsum lines replaced."""
    from tf_slim.ops.arg_scope import add_arg_scope  # pylint: disable=import-outside-toplevel
    fn = gc_module.global_context
    src = inspect.getsource(getattr(fn, "__wrapped__", fn))
    if "tf.einsum" not in src:
        return fn  # already fixed upstream (slim_attention commit 1f3d2cd)
    for old, new in _GC_LINES:
        if old not in src:
            raise ValueError("global_context no longer has %r; update the proposed fix"
                             % old)
        src = src.replace(old, new)
    src = textwrap.dedent(src[src.index("def global_context"):])
    namespace = dict(gc_module.__dict__)
    exec(compile(src, gc_module.__file__, "exec"), namespace)  # pylint: disable=exec-used
    return add_arg_scope(namespace["global_context"])


@contextlib.contextmanager
def applied():
    """Within the block, slim_attention's blocks are built with the fixes."""
    import slim_attention  # pylint: disable=import-outside-toplevel
    import slim_attention.attention as attention  # pylint: disable=import-outside-toplevel
    utils = sys.modules["slim_attention.attention._utils"]
    gc_module = sys.modules["slim_attention.attention.global_context"]
    saved = (utils.pointwise, utils.batch_norm, gc_module.global_context,
             attention.global_context, slim_attention.global_context)
    new_gc = _patched_global_context(gc_module)
    utils.pointwise = pointwise
    utils.batch_norm = make_batch_norm(utils)
    gc_module.global_context = attention.global_context = new_gc
    slim_attention.global_context = new_gc
    try:
        yield
    finally:
        (utils.pointwise, utils.batch_norm, gc_module.global_context,
         attention.global_context, slim_attention.global_context) = saved
