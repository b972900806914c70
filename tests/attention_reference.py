"""NumPy references of the attention blocks, written from docs/attention.md.

Every function takes an NHWC float64 array ``x`` and a dict ``w`` of weights
keyed by the variable's name relative to the block's scope (for example
``'fc1/weights'``), and returns the block's output (NHWC). Nothing here calls
TensorFlow, so the tests compare the library against an independent
implementation of the papers' formulas. Tests for NCHW transpose in and out.
"""
import numpy as np


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def relu(v):
    return np.maximum(v, 0.0)


def softmax(v, axis=-1):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def conv2d_same(x, kernel):
    """Cross-correlation, stride 1, 'SAME' zero padding (odd kernel); kernel [k, k, Cin, Cout]."""
    k = kernel.shape[0]
    p = (k - 1) // 2
    n, h, wd, _ = x.shape
    padded = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    out = np.zeros((n, h, wd, kernel.shape[3]))
    for di in range(k):
        for dj in range(k):
            out += padded[:, di:di + h, dj:dj + wd, :] @ kernel[di, dj]
    return out


def conv1d_same(z, kernel):
    """z [N, L]; kernel [k] -> [N, L], cross-correlation with zero padding (k odd)."""
    k = kernel.shape[0]
    p = (k - 1) // 2
    padded = np.pad(z, ((0, 0), (p, p)))
    length = z.shape[1]
    return sum(padded[:, i:i + length] * kernel[i] for i in range(k))


def max_pool_2x2_same(x):
    """2x2 max-pool, stride 2, TF 'SAME' padding (pads at the end only)."""
    n, h, wd, c = x.shape
    hh, ww = -(-h // 2), -(-wd // 2)
    padded = np.full((n, 2 * hh, 2 * ww, c), -np.inf)
    padded[:, :h, :wd, :] = x
    return padded.reshape(n, hh, 2, ww, 2, c).max(axis=(2, 4))


def batch_norm(v, w, prefix, training, epsilon):
    """Per-channel (last axis) batch norm with gamma/beta (and moving stats)."""
    axes = tuple(range(v.ndim - 1))
    if training:
        mean, var = v.mean(axis=axes), v.var(axis=axes)
    else:
        mean, var = w[prefix + 'moving_mean'], w[prefix + 'moving_variance']
    return (w[prefix + 'gamma'] * (v - mean) / np.sqrt(var + epsilon)
            + w[prefix + 'beta'])


def moving_stats_after_update(v, w, prefix, decay):
    """Moving mean and variance after one training step (unbiased variance)."""
    axes = tuple(range(v.ndim - 1))
    count = np.prod([v.shape[a] for a in axes])
    mean = v.mean(axis=axes)
    var = v.var(axis=axes) * count / (count - 1)
    mm, mv = w[prefix + 'moving_mean'], w[prefix + 'moving_variance']
    return mm - (mm - mean) * (1 - decay), mv - (mv - var) * (1 - decay)


def squeeze_and_excitation(x, w):
    z = x.mean(axis=(1, 2))
    s = relu(z @ w['fc1/weights'] + w['fc1/biases'])
    g = sigmoid(s @ w['fc2/weights'] + w['fc2/biases'])
    return x * g[:, None, None, :]


def channel_attention(x, w, prefix=''):
    def mlp(v):
        hidden = relu(v @ w[prefix + 'fc1/weights'] + w[prefix + 'fc1/biases'])
        return hidden @ w[prefix + 'fc2/weights'] + w[prefix + 'fc2/biases']

    g = sigmoid(mlp(x.mean(axis=(1, 2))) + mlp(x.max(axis=(1, 2))))
    return x * g[:, None, None, :]


def spatial_logits(x, w, prefix=''):
    """The pre-BN spatial map: conv([max_c x, mean_c x]) -> [N, H, W, 1]."""
    pooled = np.stack([x.max(axis=-1), x.mean(axis=-1)], axis=-1)
    return conv2d_same(pooled, w[prefix + 'conv/weights'])


def spatial_map(x, w, prefix='', training=True, epsilon=1e-5):
    logits = spatial_logits(x, w, prefix)
    return sigmoid(batch_norm(logits, w, prefix + 'BatchNorm/', training, epsilon))


def spatial_attention(x, w, prefix='', training=True, epsilon=1e-5):
    return x * spatial_map(x, w, prefix, training, epsilon)


def cbam(x, w, training=True, epsilon=1e-5):
    x = channel_attention(x, w, 'ChannelAttention/')
    return spatial_attention(x, w, 'SpatialAttention/', training, epsilon)


def eca(x, w):
    z = x.mean(axis=(1, 2))
    kernel = w['conv/weights'][:, 0, 0]
    return x * sigmoid(conv1d_same(z, kernel))[:, None, None, :]


def global_context(x, w, pooling='attention', fusion='add', epsilon=1e-5):
    n, h, wd, c = x.shape
    if pooling == 'attention':
        logits = x @ w['conv_mask/weights'][0, 0] + w['conv_mask/biases']  # [N,H,W,1]
        p = softmax(logits.reshape(n, h * wd), axis=1)
        ctx = np.einsum('nlc,nl->nc', x.reshape(n, h * wd, c), p)
    else:
        ctx = x.mean(axis=(1, 2))

    def transform(name):
        t = ctx @ w[name + '/conv1/weights'][0, 0] + w[name + '/conv1/biases']
        mean = t.mean(axis=1, keepdims=True)
        var = t.var(axis=1, keepdims=True)
        t = ((t - mean) / np.sqrt(var + epsilon) * w[name + '/LayerNorm/gamma']
             + w[name + '/LayerNorm/beta'])
        t = relu(t)
        t = t @ w[name + '/conv2/weights'][0, 0] + w[name + '/conv2/biases']
        return t[:, None, None, :]

    out = x
    if fusion in ('mul', 'both'):
        out = out * sigmoid(transform('channel_mul'))
    if fusion in ('add', 'both'):
        out = out + transform('channel_add')
    return out


def non_local_z_pre_bn(x, w, subsample=False):
    """conv_out(y) before the batch norm, [N, H, W, C]."""
    n, h, wd, _ = x.shape

    def conv(v, name):
        return v @ w[name + '/weights'][0, 0] + w[name + '/biases']

    source = max_pool_2x2_same(x) if subsample else x
    theta = conv(x, 'theta').reshape(n, h * wd, -1)
    phi = conv(source, 'phi').reshape(n, -1, theta.shape[-1])
    g = conv(source, 'g').reshape(n, -1, theta.shape[-1])
    ci = theta.shape[-1]
    a = softmax(theta @ phi.transpose(0, 2, 1) / np.sqrt(ci), axis=-1)
    y = (a @ g).reshape(n, h, wd, ci)
    return conv(y, 'out')


def non_local_block(x, w, subsample=False, training=True, epsilon=1e-5):
    z = non_local_z_pre_bn(x, w, subsample)
    return x + batch_norm(z, w, 'BatchNorm/', training, epsilon)
