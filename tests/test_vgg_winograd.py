"""vgg_patch.winograd (F(2x2, 3x3)) against NumPy, and Vgg19(winograd=True)."""
import logging

import numpy as np
import pytest
import tensorflow as tf

from vgg_patch import Vgg19, WINOGRAD_LAYERS, winograd

from meta_graph_check import gradients_survive_a_new_process

tf1 = tf.compat.v1


# --------------------------------------------------------------------------
# NumPy reference: 'SAME' 3x3 convolution (cross-correlation, as TensorFlow's)
# and its two gradients, in float64, one kernel tap at a time.
# --------------------------------------------------------------------------
def _taps(height, width):
    return [(i, j, np.s_[:, i:i + height, j:j + width, :]) for i in range(3) for j in range(3)]


def np_conv(x, w):
    n, h, wd, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((n, h, wd, w.shape[3]))
    for i, j, window in _taps(h, wd):
        out += xp[window] @ w[i, j]
    return out


def np_conv_grads(x, w, dy):
    n, h, wd, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for i, j, window in _taps(h, wd):
        dxp[window] += dy @ w[i, j].T
        dw[i, j] = np.einsum('nhwc,nhwk->ck', xp[window], dy)
    return dxp[:, 1:-1, 1:-1, :], dw


def _rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)


@pytest.mark.parametrize('shape,out_channels', [
    ((2, 8, 8, 3), 5),      # even sides
    ((3, 7, 5, 4), 2),      # odd sides: padded and cropped
    ((1, 1, 1, 2), 3),      # a single pixel
    ((2, 2, 3, 6), 1),      # one output channel
    ((2, 12, 10, 32), 16),  # several tiles each way, wider channels
])
def test_matches_numpy_convolution_and_its_gradients(graph, shape, out_channels):
    rng = np.random.default_rng(sum(shape) + out_channels)
    x_value = rng.standard_normal(shape)
    w_value = rng.standard_normal((3, 3, shape[3], out_channels)) / np.sqrt(9 * shape[3])
    dy_value = rng.standard_normal(shape[:3] + (out_channels,))
    x = tf1.placeholder(tf.float32, [None] + list(shape[1:]))  # batch unknown
    w = tf.constant(w_value.astype(np.float32))
    y = winograd.conv2d_3x3(x, w)
    assert y.shape.as_list() == [None] + list(shape[1:3]) + [out_channels]
    dx, dw = tf.gradients(y, [x, w], grad_ys=dy_value.astype(np.float32))
    with tf1.Session() as sess:
        got_y, got_dx, got_dw = sess.run([y, dx, dw], {x: x_value.astype(np.float32)})
    want_dx, want_dw = np_conv_grads(x_value, w_value, dy_value)
    # float32 round-off only: Winograd sums in another order than the direct kernel.
    assert _rel(got_y, np_conv(x_value, w_value)) < 2e-6
    assert _rel(got_dx, want_dx) < 2e-6
    assert _rel(got_dw, want_dw) < 2e-6


def test_empty_batch_and_a_variable_filter(graph):
    x = tf1.placeholder(tf.float32, [None, 6, 6, 4])
    w = tf1.get_variable('w', [3, 3, 4, 8])
    y = winograd.conv2d_3x3(x, w)
    loss_grad, = tf.gradients(tf.reduce_sum(y), [w])
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        out, grad = sess.run([y, loss_grad], {x: np.zeros((0, 6, 6, 4), np.float32)})
    assert out.shape == (0, 6, 6, 8)
    np.testing.assert_array_equal(grad, np.zeros((3, 3, 4, 8), np.float32))


@pytest.mark.parametrize('x_shape,x_dtype,w_shape,w_dtype', [
    ([None, 8, 8, 4], tf.float64, [3, 3, 4, 2], tf.float64),  # float32 only
    ([None, None, 8, 4], tf.float32, [3, 3, 4, 2], tf.float32),  # height unknown
    ([None, 8, 8, 4], tf.float32, [5, 5, 4, 2], tf.float32),  # not 3x3
    ([None, 8, 8, 4], tf.float32, [3, 3, 3, 2], tf.float32),  # channels differ
    ([8, 8, 4], tf.float32, [3, 3, 4, 2], tf.float32),        # not rank 4
])
def test_unsupported_inputs_are_refused_with_the_shapes(graph, x_shape, x_dtype,
                                                        w_shape, w_dtype):
    x = tf1.placeholder(x_dtype, x_shape)
    w = tf1.placeholder(w_dtype, w_shape)
    assert not winograd.supports(x, w)
    with pytest.raises(ValueError, match=r'conv2d_3x3 takes float32 x \[N, H, W, C\].*got x '
                                         + x_dtype.name):
        winograd.conv2d_3x3(x, w)


# --------------------------------------------------------------------------
# Vgg19(winograd=True)
# --------------------------------------------------------------------------
def _build(size, winograd_on, **kwargs):
    rgb = tf1.placeholder(tf.float32, [None, size, size, 3])
    vgg = Vgg19(None, winograd=winograd_on, **kwargs)
    vgg.build(rgb, train_mode=False)
    return rgb, vgg


def _op_types(graph, scope):
    return {op.type for op in graph.get_operations() if op.name.startswith(scope + '/')}


def test_vgg_uses_winograd_in_stages_3_to_5_only():
    assert WINOGRAD_LAYERS == tuple('conv%d_%d' % (s, i) for s in (3, 4, 5) for i in (1, 2, 3, 4))
    graph = tf.Graph()
    with graph.as_default():
        _build(32, True, include_top=False)
    for name in ('conv1_1', 'conv1_2', 'conv2_1', 'conv2_2'):
        assert 'Conv2D' in _op_types(graph, name), name
    for name in WINOGRAD_LAYERS:
        types = _op_types(graph, name)
        assert 'Conv2D' not in types and 'BatchMatMulV2' in types, name
    assert graph.get_tensor_by_name('conv4_2/Relu:0') is not None  # same tensor names


def _logits_and_gradients(size, winograd_on, images, restore=None, save=None):
    """(logits, gradients of a fixed linear function of the logits, variable names)."""
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        rgb, vgg = _build(size, winograd_on)
        # Linear in the logits: a sin() or softmax would amplify round-off of
        # logits in the hundreds into percent-sized gradient differences.
        weights = np.random.default_rng(5).standard_normal((1, 1000)).astype(np.float32)
        grads = tf.gradients(tf.reduce_sum(vgg.fc8 * weights), tf1.trainable_variables())
        assert all(g is not None for g in grads)
        names = {v.op.name: v.shape.as_list() for v in tf1.global_variables()}
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            if restore:
                saver.restore(sess, restore)
            else:
                sess.run(tf1.global_variables_initializer())
            logits, values = sess.run([vgg.fc8, grads], {rgb: images})
            if save:
                saver.save(sess, save)
    return logits, values, names


def test_vgg_checkpoint_moves_between_direct_and_winograd_with_the_same_outputs(tmp_path):
    """Same variables: a checkpoint of the direct network restores into the Winograd one."""
    images = np.random.default_rng(4).random((2, 36, 36, 3), dtype=np.float32)  # 9x9: odd
    path = str(tmp_path / 'direct.ckpt')
    want_logits, want_grads, want_names = _logits_and_gradients(36, False, images, save=path)
    got_logits, got_grads, got_names = _logits_and_gradients(36, True, images, restore=path)
    assert got_names == want_names
    assert _rel(got_logits, want_logits) < 1e-4
    # Gradients in norm: a round-off difference that flips one max-pool choice or
    # ReLU near zero (two values within 1e-6 of each other: likely among the
    # ~10^4 windows here) moves a few entries of the early layers' gradients;
    # measured over six seeds: 3e-5 without a flip, up to 1.4e-2 with one. The
    # layer's own gradients are checked against NumPy to 2e-6 above.
    for index, (got, want) in enumerate(zip(got_grads, want_grads)):
        assert np.linalg.norm(got - want) <= 0.05 * np.linalg.norm(want), index


def test_vgg_unsized_input_stays_direct_with_a_warning(graph, caplog):
    with caplog.at_level(logging.WARNING, logger='vgg_patch.vgg19'):
        rgb = tf1.placeholder(tf.float32, [None, None, None, 3])
        Vgg19(None, include_top=False, winograd=True).build(rgb)
    assert 'conv3_1: input (None, None, None, 128) has no static height and width; ' \
           'computing it with tf.nn.conv2d, not Winograd' in caplog.text
    assert 'Conv2D' in _op_types(graph, 'conv5_4')


def test_vgg_winograd_must_be_a_bool():
    with pytest.raises(TypeError, match="winograd must be a bool or a collection of conv layer names.*got 'yes'"):
        Vgg19(winograd='yes')


def _winograd_conv():
    x = tf1.placeholder(tf.float32, [None, 6, 5, 4], name='x')
    w = tf1.get_variable('w', [3, 3, 4, 3])
    return winograd.conv2d_3x3(x, w), [x, w]


def test_exported_meta_graph_can_be_differentiated_in_a_new_process(tmp_path,
                                                                    run_in_new_processes):
    # TF1 habit: import_meta_graph, then train on top. The gradient is
    # registered by name, so the new process finds it by importing the module.
    value = np.random.RandomState(0).normal(size=(2, 6, 5, 4))
    assert 'same gradients' in gradients_survive_a_new_process(
        tmp_path, run_in_new_processes, _winograd_conv, value, 'vgg_patch.winograd',
        atol=1e-6)


def test_gradient_reads_only_the_transformed_input_and_filters(graph):
    """The backward pass must not hold the transforms' large intermediates (their
    shapes were read by TensorFlow's own gradients: 2.3x a VGG19 step's memory)."""
    x = tf1.placeholder(tf.float32, [None, 6, 6, 4])
    w = tf1.get_variable('w', [3, 3, 4, 8])
    y = winograd.conv2d_3x3(x, w)
    forward = set(graph.get_operations())
    identity, = [op for op in forward if op.type == 'IdentityN']
    allowed = {identity.inputs[3], identity.inputs[4]}  # V and U
    grads = tf.gradients(y, [x, w], grad_ys=tf1.placeholder(tf.float32, [None, 6, 6, 8]))
    # The ops a session runs for the gradients: their ancestry, up to the forward pass.
    read, seen, todo = set(), set(), [g.op for g in grads]
    while todo:
        op = todo.pop()
        if op in seen:
            continue
        seen.add(op)
        for t in op.inputs:
            if t.op in forward:
                if t.op.type != 'Const':
                    read.add(t)
            else:
                todo.append(t.op)
        todo.extend(c for c in op.control_inputs if c not in forward)
    assert read == allowed, sorted(t.name for t in read)


def test_transform_helpers_apply_the_papers_matrices():
    """The hand-written sums are Lavin & Gray's B^T and its transpose."""
    basis = list(np.eye(4))
    np.testing.assert_array_equal(np.stack(winograd._apply_b_t(*basis)), winograd._B_T)
    np.testing.assert_array_equal(np.stack(winograd._apply_b(*basis)), winograd._B_T.T)
