"""The attention blocks as test cases, and small TensorFlow helpers for their tests.

Each case pins a block's default scope, its variables (names relative to the
scope, and shapes) as a function of the channel count, its parameter-count
formula from docs/attention.md, and the NumPy reference
(:mod:`attention_reference`) it must match.
"""
import collections

import numpy as np
import tensorflow as tf

import attention_reference as ref
import slim_attention as slim

tf1 = tf.compat.v1

Case = collections.namedtuple(
    'Case', ['name', 'fn', 'kwargs', 'scope', 'variables', 'params',
             'reference', 'has_bn', 'scoped_kwargs', 'scoped_variable'])


def _mlp_variables(c, p, prefix=''):
    return {prefix + 'fc1/weights': (c, p), prefix + 'fc1/biases': (p,),
            prefix + 'fc2/weights': (p, c), prefix + 'fc2/biases': (c,)}


def _bn_variables(c, prefix):
    return {prefix + n: (c,) for n in
            ('beta', 'gamma', 'moving_mean', 'moving_variance')}


def se_variables(c, r=16):
    return _mlp_variables(c, max(1, c // r))


def sam_variables(c, k=7):
    v = {'conv/weights': (k, k, 2, 1)}
    v.update(_bn_variables(1, 'BatchNorm/'))
    return v


def cbam_variables(c, r=16, k=7):
    v = _mlp_variables(c, max(1, c // r), 'ChannelAttention/')
    v.update({'SpatialAttention/' + n: s for n, s in sam_variables(c, k).items()})
    return v


def gc_variables(c, r=16, pooling='attention', fusions=('channel_add',)):
    p = max(1, c // r)
    v = {}
    if pooling == 'attention':
        v.update({'conv_mask/weights': (1, 1, c, 1), 'conv_mask/biases': (1,)})
    for f in fusions:
        v.update({f + '/conv1/weights': (1, 1, c, p), f + '/conv1/biases': (p,),
                  f + '/LayerNorm/beta': (p,), f + '/LayerNorm/gamma': (p,),
                  f + '/conv2/weights': (1, 1, p, c), f + '/conv2/biases': (c,)})
    return v


def eca_variables(c, k=None):
    from slim_attention.attention.eca import adaptive_kernel_size
    return {'conv/weights': (k or adaptive_kernel_size(c), 1, 1)}


def nl_variables(c, r=2):
    ci = max(1, c // r)
    v = {}
    for n in ('theta', 'phi', 'g'):
        v.update({n + '/weights': (1, 1, c, ci), n + '/biases': (ci,)})
    v.update({'out/weights': (1, 1, ci, c), 'out/biases': (c,)})
    v.update(_bn_variables(c, 'BatchNorm/'))
    return v


# Parameter counts, the formulas of docs/attention.md (trainable only).
def se_params(c, r=16):
    p = max(1, c // r)
    return 2 * c * p + p + c


def sam_params(c, k=7):
    return k * k * 2 + 2


def cbam_params(c, r=16, k=7):
    return se_params(c, r) + sam_params(c, k)


def gc_params(c, r=16):
    p = max(1, c // r)
    return 2 * c * p + 3 * p + 2 * c + 1


def eca_params(c, k=None):
    return eca_variables(c, k)['conv/weights'][0]


def nl_params(c, r=2):
    ci = max(1, c // r)
    return 4 * c * ci + 3 * ci + c + 2 * c


CASES = [
    Case('se', slim.squeeze_and_excitation, {}, 'SqueezeExcitation',
         se_variables, se_params, lambda x, w, t: ref.squeeze_and_excitation(x, w),
         False, {'reduction_ratio': 8}, ('fc1/weights', lambda c: (c, c // 8))),
    Case('channel', slim.channel_attention, {}, 'ChannelAttention',
         se_variables, se_params, lambda x, w, t: ref.channel_attention(x, w),
         False, {'reduction_ratio': 8}, ('fc1/weights', lambda c: (c, c // 8))),
    Case('sam', slim.spatial_attention, {}, 'SpatialAttention',
         sam_variables, sam_params,
         lambda x, w, t: ref.spatial_attention(x, w, training=t),
         True, {'kernel_size': 3}, ('conv/weights', lambda c: (3, 3, 2, 1))),
    Case('cbam', slim.convolutional_block_attention_module, {}, 'CBAM',
         cbam_variables, cbam_params, lambda x, w, t: ref.cbam(x, w, training=t),
         True, {'inner_units_ratio': 0.5},
         ('ChannelAttention/fc1/weights', lambda c: (c, c // 2))),
    Case('gc', slim.global_context, {}, 'GlobalContext',
         gc_variables, gc_params, lambda x, w, t: ref.global_context(x, w),
         False, {'reduction_ratio': 4},
         ('channel_add/conv1/weights', lambda c: (1, 1, c, c // 4))),
    Case('eca', slim.efficient_channel_attention, {}, 'ECA',
         eca_variables, eca_params, lambda x, w, t: ref.eca(x, w),
         False, {'kernel_size': 5}, ('conv/weights', lambda c: (5, 1, 1))),
    Case('nl', slim.non_local_block, {}, 'NonLocal',
         nl_variables, nl_params,
         lambda x, w, t: ref.non_local_block(x, w, training=t),
         True, {'reduction_ratio': 4},
         ('theta/weights', lambda c: (1, 1, c, c // 4))),
]
CASE_IDS = [c.name for c in CASES]

# Variables whose gradient is zero by the math, not by a bug: a bias added to
# every logit of a softmax (GC's conv_mask, non-local's phi) cancels in it;
# a bias that adds a per-channel constant before a training-mode batch norm
# (non-local's out, and g, whose bias passes through the row-stochastic A
# unchanged) cancels in the batch mean.
ZERO_GRADIENT_BY_MATH = {
    'gc': {'conv_mask/biases'},
    'nl': {'phi/biases', 'g/biases', 'out/biases'},
}


def placeholder(shape, data_format='NHWC', dtype=tf.float32, name='x'):
    """A placeholder for an NHWC shape, laid out in data_format."""
    if data_format == 'NCHW':
        shape = [shape[0], shape[3], shape[1], shape[2]]
    return tf1.placeholder(dtype, shape, name=name)


def to_layout(x, data_format):
    return x.transpose(0, 3, 1, 2) if data_format == 'NCHW' else x


def from_layout(x, data_format):
    return x.transpose(0, 2, 3, 1) if data_format == 'NCHW' else x


def variable(name):
    """The variable called ``name`` (resource variables cannot be fetched as 'name:0')."""
    (found,) = [v for v in tf1.global_variables() if v.op.name == name]
    return found


def scope_variables(scope, collection=tf1.GraphKeys.GLOBAL_VARIABLES):
    return tf1.get_collection(collection, scope=scope + '/')


def relative_shapes(variables, scope):
    """{name relative to scope: shape} of variables."""
    return {v.op.name[len(scope) + 1:]: tuple(v.shape.as_list())
            for v in variables}


def count_params(variables):
    return int(sum(np.prod(v.shape.as_list()) for v in variables))


def set_random_weights(sess, variables, scope, seed=0):
    """Assigns non-zero random values to variables; returns {relative name: value}.

    Moving variances get values in [0.5, 1.5]; everything else N(0, 0.5^2).
    """
    rng = np.random.RandomState(seed)
    values = {}
    for v in variables:
        name = v.op.name[len(scope) + 1:]
        shape = v.shape.as_list()
        if name.endswith('moving_variance'):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.5, shape)
        values[name] = value
        v.load(value.astype(v.dtype.base_dtype.as_numpy_dtype), sess)
    return values
