"""3x3 convolution by Winograd's minimal filtering, F(2x2, 3x3), in graph ops.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016
(https://arxiv.org/abs/1509.09308). Each 2x2 output tile is computed from a 4x4
input tile with 16 multiplications per input/output channel pair instead of 36::

    Y = A^T [ (G g G^T) * (B^T d B) ] A

summed over input channels. With the tiles of one image batch gathered, the
sum over channels is 16 independent matrix products ``V[p] @ U[p]``
(``V[p]``: [tiles, C], ``U[p]``: [C, K]), which is 2.25x fewer multiply-adds
than the direct convolution; the transforms before and after are adds and
subtracts over the data.

Why it is here: on CPU, TensorFlow runs every float32 convolution with
oneDNN's direct algorithm (Keras too), so vgg_patch and Keras' VGG19 run the
same kernels. For VGG19's deeper stages (C, K >= 256, at most 56x56) these
Winograd products are faster than the direct kernels in forward and backward
(see docs/benchmarks.md): :class:`vgg_patch.Vgg19`'s ``winograd=True`` uses
this module there. The weights are the usual [3, 3, C, K] filters, so
checkpoints and npy files do not change.

NOTE: the result equals ``tf.nn.conv2d(x, filters, 1, 'SAME')`` up to
float32 round-off (the sums are taken in another order; docs/benchmarks.md
has the measured differences), not bit for bit. The input transform and its
adjoint run as XLA clusters (``jit_scope``): as separate TensorFlow ops they
make about ten passes over the data and cost more than they save. Graph mode
only (``jit_scope`` refuses eager execution). The gradient is registered by
name when this module is imported (see :func:`_conv_grad`).
"""
import numpy as np
import tensorflow as tf

from vgg_patch import _shapes

__all__ = ['conv2d_3x3', 'supports']

# F(2x2, 3x3) with interpolation points 0, 1, -1 (Lavin & Gray, section 4.1).
_B_T = np.array([[1, 0, -1, 0],
                 [0, 1, 1, 0],
                 [0, -1, 1, 0],
                 [0, 1, 0, -1]], np.float32)
_G = np.array([[1, 0, 0],
               [0.5, 0.5, 0.5],
               [0.5, -0.5, 0.5],
               [0, 0, 1]], np.float32)
_A_T = np.array([[1, 1, 1, 0],
                 [0, 1, -1, -1]], np.float32)


def supports(x, filters):
    """True when :func:`conv2d_3x3` can compute ``x`` with ``filters``.

    That is: float32, ``x`` of rank 4 with static height, width and channels,
    ``filters`` of static shape [3, 3, channels, K]. The batch may be unknown.
    """
    shape, fshape = _shapes.dims(x), _shapes.dims(filters)
    if x.dtype != tf.float32 or filters.dtype.base_dtype != tf.float32:
        return False
    if shape is None or fshape is None or len(shape) != 4 or len(fshape) != 4:
        return False
    if None in shape[1:] or None in fshape:
        return False
    return fshape[:3] == [3, 3, shape[3]]


def conv2d_3x3(x, filters, name=None):
    """``tf.nn.conv2d(x, filters, strides=1, padding='SAME')`` by Winograd F(2x2, 3x3).

    Args:
      x: float32 [N, H, W, C] (NHWC), H, W and C static; N may be unknown.
        Odd H or W work (one zero row or column is added and cropped again).
      filters: float32 [3, 3, C, K] (a variable or any tensor).
      name: name scope, default 'Winograd'.

    Returns:
      float32 [N, H, W, K].

    Raises:
      ValueError: ``x`` or ``filters`` have other shapes or dtypes (see
        :func:`supports`).
    """
    if not supports(x, filters):
        raise ValueError(
            'conv2d_3x3 takes float32 x [N, H, W, C] with static H, W, C and filters '
            '[3, 3, C, K]; got x %s %s and filters %s %s'
            % (x.dtype.name, _shapes.text(x), filters.dtype.base_dtype.name,
               _shapes.text(filters)))
    with tf.name_scope(name or 'Winograd'):
        _, height, width, _ = _shapes.dims(x)
        out_channels = _shapes.dims(filters)[3]
        tiles_h, tiles_w = _tiles(height, width)
        # One XLA cluster, so that the ten-odd adds, slices and stacks below are
        # one pass over x (_conv_grad's adjoint is one too).
        with tf.xla.experimental.jit_scope():
            v = _input_transform(x, tiles_h, tiles_w)            # [16, N*th*tw, C]
        # After x exists: the transforms of every layer's filters would otherwise
        # all run at the start of a step and hold 16/9 of the weights at once.
        with tf.control_dependencies([x]):
            u = _filter_transform(filters)                      # [16, C, K]
        m = tf.matmul(v, u)                                     # [16, N*th*tw, K]
        y = _output_transform(m, tiles_h, tiles_w, out_channels)  # [N, 2th, 2tw, K]
        if (2 * tiles_h, 2 * tiles_w) != (height, width):
            y = y[:, :height, :width, :]
        # The gradient (_conv_grad) needs V and U only. TensorFlow's own
        # gradients of the transforms would read the shapes of their large
        # intermediates, keeping those alive until the backward pass starts:
        # under the usual control_dependencies(UPDATE_OPS) that doubled a
        # training step's memory.
        graph = tf.compat.v1.get_default_graph()
        with graph.gradient_override_map({'IdentityN': _GRAD_NAME}):
            return tf.identity_n([y, x, filters, v, u])[0]


def _tiles(height, width):
    """Number of 2x2 output tiles down and across (odd sides get a padded tile)."""
    return -(-height // 2), -(-width // 2)


# --------------------------------------------------------------------------
# Gradient, registered by name (an exported graph can be differentiated in a
# process that imports vgg_patch.winograd; see slim_attention's _utils).
# --------------------------------------------------------------------------
_GRAD_NAME = 'VggPatchWinogradConv3x3'


def _conv_grad(op, d_y, *unused):
    """IdentityN([y, x, filters, V, U]) -> [None, dx, dfilters, None, None].

    The adjoint of each step, in reverse: output transform, the 16 products
    (dV = dM U^T, dU = V^T dM), input and filter transforms.
    """
    del unused
    _, x, filters, v, u = op.inputs
    if d_y is None:
        return [None] * 5
    # Static shapes only: reading x itself would keep it alive for the backward pass.
    _, height, width, channels = _shapes.dims(x)
    out_channels = _shapes.dims(filters)[3]
    tiles_h, tiles_w = _tiles(height, width)
    if (2 * tiles_h, 2 * tiles_w) != (height, width):
        d_y = tf.pad(d_y, [[0, 0], [0, 2 * tiles_h - height], [0, 2 * tiles_w - width],
                           [0, 0]])
    d_m = _output_transform_adjoint(d_y, tiles_h, tiles_w, out_channels)
    d_v = tf.matmul(d_m, u, adjoint_b=True)                     # [16, T, C]
    d_u = tf.matmul(v, d_m, adjoint_a=True)                     # [16, C, K]
    with tf.xla.experimental.jit_scope():
        d_x = _input_transform_adjoint(d_v, height, width, tiles_h, tiles_w, channels)
    return [None, d_x, _filter_transform_adjoint(d_u, channels, out_channels),
            None, None]


try:
    tf.RegisterGradient(_GRAD_NAME)(_conv_grad)
except KeyError:  # already registered (the module was reloaded)
    pass


def _phases(t, axis, tiles):
    """The 4 tap positions of 4-wide windows at stride 2 along ``axis``.

    ``t`` has ``2 * tiles + 2`` entries along ``axis``; returns four tensors of
    ``tiles`` entries, the i-th holding entries ``i, i + 2, i + 4, ...``.
    """
    shape = [-1 if d is None else d for d in _shapes.dims(t)]
    split = shape[:axis] + [tiles + 1, 2] + shape[axis + 1:]
    even, odd = tf.unstack(tf.reshape(t, split), axis=axis + 1)
    head = [slice(None)] * axis + [slice(None, -1)]
    tail = [slice(None)] * axis + [slice(1, None)]
    return even[tuple(head)], odd[tuple(head)], even[tuple(tail)], odd[tuple(tail)]


def _apply_b_t(d0, d1, d2, d3):
    """:data:`_B_T` applied along one axis: the four transformed tap sums."""
    return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def _apply_b(g0, g1, g2, g3):
    """The adjoint of :func:`_apply_b_t` (B applied along one axis)."""
    return [g0, g1 - g2 + g3, g1 + g2 - g0, -g3]


def _pad_axis(t, axis, before, after):
    paddings = [[0, 0]] * len(t.shape)
    paddings[axis] = [before, after]
    return tf.pad(t, paddings)


def _phases_adjoint(d0, d1, d2, d3, axis):
    """The adjoint of :func:`_phases`: adds the four tap positions back into
    one axis of ``2 * tiles + 2`` entries."""
    even = _pad_axis(d0, axis, 0, 1) + _pad_axis(d2, axis, 1, 0)
    odd = _pad_axis(d1, axis, 0, 1) + _pad_axis(d3, axis, 1, 0)
    both = tf.stack([even, odd], axis + 1)                      # [..., tiles + 1, 2, ...]
    shape = [-1 if d is None else d for d in _shapes.dims(both)]
    return tf.reshape(both, shape[:axis] + [shape[axis] * 2] + shape[axis + 2:])


def _input_transform_adjoint(d_v, height, width, tiles_h, tiles_w, channels):
    """dx from dV: B dV B^T per tile, the overlapping tiles added back, cropped."""
    d_tiles = tf.reshape(d_v, [4, 4, -1, tiles_h, tiles_w, channels])
    d_rows = _phases_adjoint(*_apply_b(*tf.unstack(d_tiles, axis=1)), axis=3)
    d_xp = _phases_adjoint(*_apply_b(*tf.unstack(d_rows, axis=0)), axis=1)
    return d_xp[:, 1:height + 1, 1:width + 1, :]


def _input_transform(x, tiles_h, tiles_w):
    """V = B^T d B for every overlapping 4x4 tile, as [16, N * tiles, C]."""
    _, height, width, channels = _shapes.dims(x)
    xp = tf.pad(x, [[0, 0], [1, 2 * tiles_h + 1 - height],
                    [1, 2 * tiles_w + 1 - width], [0, 0]])
    rows = tf.stack(_apply_b_t(*_phases(xp, 1, tiles_h)), 0)   # [4, N, th, 2tw+2, C]
    tiles = tf.stack(_apply_b_t(*_phases(rows, 3, tiles_w)), 1)  # [4, 4, N, th, tw, C]
    return tf.reshape(tiles, [16, -1, channels])


def _filter_transform(filters):
    """U = G g G^T per channel pair, as [16, C, K].

    Two matrix products with a 3-wide inner dimension, like the output
    transform (a three-operand einsum transposes the filters and took 10 ms
    for a 512x512 layer, as much as the layer's products at batch 1).
    """
    _, _, channels, out_channels = _shapes.dims(filters)
    g = tf.constant(_G)
    rows = tf.matmul(g, tf.reshape(filters, [3, -1]))            # [4, 3*C*K]
    rows = tf.reshape(rows, [4, 3, -1])                          # [a, j, C*K]
    u = tf.matmul(tf.broadcast_to(g, [4, 4, 3]), rows)           # [a, b, C*K]
    return tf.reshape(u, [16, channels, out_channels])


def _filter_transform_adjoint(d_u, channels, out_channels):
    """dfilters from dU: G^T dU G, as [3, 3, C, K]."""
    g_t = tf.constant(_G.T)
    d_rows = tf.matmul(tf.broadcast_to(g_t, [4, 3, 4]),
                       tf.reshape(d_u, [4, 4, -1]))             # [a, j, C*K]
    d_g = tf.matmul(g_t, tf.reshape(d_rows, [4, -1]))           # [i, 3*C*K]
    return tf.reshape(d_g, [3, 3, channels, out_channels])


def _output_transform_adjoint(d_y, tiles_h, tiles_w, channels):
    """dM from dY (uncropped): A dY A^T per tile, as [16, T, K]."""
    a = tf.constant(_A_T.T)                                      # [4, 2]
    d_y = tf.reshape(d_y, [-1, tiles_h, 2, tiles_w, 2, channels])  # [N, th, a, tw, b, K]
    d_y = tf.reshape(tf.transpose(d_y, [2, 4, 0, 1, 3, 5]), [2, 2, -1])  # [a, b, T*K]
    d_rows = tf.matmul(tf.broadcast_to(a, [2, 4, 2]), d_y)       # [a, s, T*K]
    d_m = tf.matmul(a, tf.reshape(d_rows, [2, -1]))              # [r, 4*T*K]
    return tf.reshape(d_m, [16, -1, channels])


def _output_transform(m, tiles_h, tiles_w, channels):
    """Y = A^T M A per tile, tiles put back in place: [N, 2th, 2tw, K].

    Both 1-D transforms are matrix products with a 4-wide inner dimension
    (one pass over M each), cheaper here than four adds per output.
    """
    a_t = tf.constant(_A_T)
    rows = tf.matmul(a_t, tf.reshape(m, [4, -1]))               # [2, 4*T*K]
    rows = tf.reshape(rows, [2, 4, -1])                         # [a, s, T*K]
    y = tf.matmul(tf.broadcast_to(a_t, [2, 2, 4]), rows)        # [a, b, T*K]
    y = tf.reshape(y, [2, 2, -1, tiles_h, tiles_w, channels])   # [a, b, N, th, tw, K]
    y = tf.transpose(y, [2, 3, 0, 4, 1, 5])                     # [N, th, a, tw, b, K]
    return tf.reshape(y, [-1, 2 * tiles_h, 2 * tiles_w, channels])
