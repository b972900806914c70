"""vgg_patch.Vgg19: against Keras' VGG19, CBAM wiring, loading, saving, sizes, errors."""
import logging

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.ops import resource_variable_ops

from vgg_patch import Vgg19, WeightsFileError
from vgg_patch.layout import KERAS_NAMES

from vgg_fixtures import (VGG19_PARAMS, VGG19_SHAPES, full_size_npy, make_array,
                          write_indexed_npy, write_python2_npy)

tf1 = tf.compat.v1

CBAM_VARIABLES = {  # name -> shape, per the attention spec at C = 512, P = 256, k = 7
    'cbam_0/ChannelAttention/fc1/weights': (512, 256),
    'cbam_0/ChannelAttention/fc1/biases': (256,),
    'cbam_0/ChannelAttention/fc2/weights': (256, 512),
    'cbam_0/ChannelAttention/fc2/biases': (512,),
    'cbam_0/SpatialAttention/conv/weights': (7, 7, 2, 1),
    'cbam_0/SpatialAttention/BatchNorm/gamma': (1,),
    'cbam_0/SpatialAttention/BatchNorm/beta': (1,),
}
CBAM_MOVING = {'cbam_0/SpatialAttention/BatchNorm/moving_mean': (1,),
               'cbam_0/SpatialAttention/BatchNorm/moving_variance': (1,)}
CBAM_PARAMS = 2 * 512 * 256 + 256 + 512 + 7 * 7 * 2 + 2  # spec: 2CP + P + C + 2k^2 + 2


@pytest.fixture(scope='module')
def vgg19_npy(tmp_path_factory):
    """The full-size original-format file (548 MB), shared by the session."""
    return full_size_npy(tmp_path_factory)


def _images(n=2, size=224, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 3), dtype=np.float32)


def _keras_logits(images, seed=0):
    """Keras' VGG19 with the fixture's weights, on caffe-preprocessed images.

    tf-keras (Keras 2), whose ``predict`` runs in both TensorFlow behaviours;
    Keras 3 (``tf.keras``) needs eager execution, which
    ``disable_v2_behavior()`` turns off.
    """
    import tf_keras  # pylint: disable=import-outside-toplevel
    model = tf_keras.applications.VGG19(weights=None, classifier_activation=None)
    for name, keras_name in KERAS_NAMES.items():
        model.get_layer(keras_name).set_weights([make_array(name, 0, seed),
                                                 make_array(name, 1, seed)])
    bgr = tf_keras.applications.vgg19.preprocess_input(images * 255.0)  # caffe: BGR, mean
    return np.asarray(model.predict(bgr, verbose=0))


def test_logits_match_keras_vgg19_with_attention_off(vgg19_npy):
    images = _images()
    expected = _keras_logits(images)
    graph = tf.Graph()
    with graph.as_default():
        rgb = tf1.placeholder(tf.float32, [None, 224, 224, 3])
        vgg = Vgg19(vgg19_npy, attention=None)
        vgg.build(rgb, train_mode=tf.constant(False))
        assert vgg.attention_output is vgg.pool5 and vgg.attention_map is None
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            logits, prob = sess.run([vgg.fc8, vgg.prob], {rgb: images})
    scale = np.abs(expected).max()
    assert scale > 1.0  # the synthetic weights give real, non-vanishing logits
    assert np.abs(logits - expected).max() < 1e-4 * scale
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)


def test_global_variables_initializer_alone_loads_the_file(vgg19_npy):
    graph = tf.Graph()
    with graph.as_default():
        vgg = Vgg19(vgg19_npy)  # CBAM on: it starts fresh, the VGG layers come from the file
        vgg.build(tf1.placeholder(tf.float32, [1, 224, 224, 3]))
        names = [v.name for v in tf1.global_variables()]
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for (name, idx), var in vgg.var_dict.items():
                if name.startswith('cbam'):
                    continue
                assert var.name == '%s/%s_%s:0' % (name, name, ('filters', 'weights')[
                    name.startswith('fc')] if idx == 0 else 'biases')
                np.testing.assert_array_equal(sess.run(var), make_array(name, idx),
                                              err_msg=var.name)
    assert len([n for n in names if not n.startswith('cbam_0/')]) == 2 * len(VGG19_SHAPES)
    assert vgg.get_var_count() == VGG19_PARAMS + CBAM_PARAMS + 2


def test_graphdef_stays_small(vgg19_npy):
    graph = tf.Graph()
    with graph.as_default():
        vgg = Vgg19(vgg19_npy)
        vgg.build(tf1.placeholder(tf.float32, [None, 224, 224, 3]))
        graph_def = graph.as_graph_def()
    size = len(graph_def.SerializeToString())
    assert size < 1 << 20, size
    biggest = max(len(node.SerializeToString()) for node in graph_def.node)
    assert biggest < 4096  # no node carries weights


def test_fc6_reads_the_cbam_output_and_cbam_variables_follow_the_spec(graph):
    rgb = tf1.placeholder(tf.float32, [None, 224, 224, 3])
    vgg = Vgg19(None)
    vgg.build(rgb)
    # fc6 = MatMul(Reshape(attention_output)): trace its input back
    matmul = [op for op in graph.get_operations()
              if op.type == 'MatMul' and op.name.startswith('fc6/')]
    assert len(matmul) == 1
    reshape = matmul[0].inputs[0].op
    assert reshape.type == 'Reshape'
    assert reshape.inputs[0] is vgg.attention_output
    assert vgg.attention_output is not vgg.pool5
    assert vgg.attention_output.op.name.startswith('cbam_0/SpatialAttention/')

    def ancestors(tensor):
        seen, stack = set(), [tensor.op]
        while stack:
            op = stack.pop()
            if op not in seen:
                seen.add(op)
                stack.extend(t.op for t in op.inputs)
        return seen

    upstream = ancestors(vgg.attention_output)
    assert vgg.pool5.op in upstream and vgg.attention_map.op in upstream
    assert vgg.attention_map.name == 'cbam_0/SpatialAttention/attention_map:0'
    assert vgg.attention_map.shape.as_list() == [None, 7, 7, 1]

    trainable = {v.op.name: tuple(v.shape.as_list()) for v in tf1.trainable_variables()
                 if v.op.name.startswith('cbam_0/')}
    moving = {v.op.name: tuple(v.shape.as_list()) for v in tf1.global_variables()
              if v.op.name.startswith('cbam_0/') and not v.trainable}
    assert trainable == CBAM_VARIABLES
    assert moving == CBAM_MOVING
    assert sum(int(np.prod(s)) for s in trainable.values()) == CBAM_PARAMS
    assert {k for k in vgg.var_dict if k[0] == 'cbam_0'} == {
        ('cbam_0', n[len('cbam_0/'):]) for n in list(CBAM_VARIABLES) + list(CBAM_MOVING)}


def test_save_npy_round_trip_reproduces_outputs_cbam_included(tmp_path):
    images = _images(2, 32, seed=1)  # fc6 is [512, 4096] at 32 x 32: every layer saved
    path = str(tmp_path / 'saved.npy')
    rng = np.random.default_rng(5)
    graph = tf.Graph()
    with graph.as_default():
        rgb = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        vgg = Vgg19(None)
        vgg.build(rgb, train_mode=tf.constant(False))
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for (name, _), var in vgg.var_dict.items():  # CBAM away from its init values
                if name == 'cbam_0':
                    value = rng.uniform(0.5, 1.5, var.shape.as_list()).astype(np.float32)
                    var.load(value, sess)
            before = sess.run(vgg.fc8, {rgb: images})
            cbam_before = {k: sess.run(v) for k, v in vgg.var_dict.items() if k[0] == 'cbam_0'}
            assert vgg.save_npy(sess, path) == path
    saved = np.load(path, allow_pickle=True).item()  # tensorflow-vgg's reader works
    assert set(saved['cbam_0']) == {k[1] for k in cbam_before}

    graph = tf.Graph()
    with graph.as_default():
        rgb = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        vgg = Vgg19(path)
        vgg.build(rgb, train_mode=tf.constant(False))
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            after = sess.run(vgg.fc8, {rgb: images})
            for key, value in cbam_before.items():
                np.testing.assert_array_equal(sess.run(vgg.var_dict[key]), value)
    np.testing.assert_array_equal(after, before)
    with pytest.raises(ValueError, match='refusing to overwrite'):
        with graph.as_default(), tf1.Session() as sess:
            vgg.save_npy(sess, path)


def test_original_file_loads_with_cbam_fresh_and_says_so(vgg19_npy, caplog):
    with caplog.at_level(logging.INFO, logger='vgg_patch'):
        with tf.Graph().as_default():
            vgg = Vgg19(vgg19_npy, num_classes=10, include_top=True)
            vgg.build(tf1.placeholder(tf.float32, [None, 224, 224, 3]))
            assert vgg.var_dict[('fc8', 0)].shape.as_list() == [4096, 10]
    text = caplog.text
    assert 'holds no attention weights' in text and 'CBAM' in text and 'starts fresh' in text
    assert 'fc8 starts fresh' in text


def test_small_python2_file_drives_the_conv_part(tmp_path):
    # all conv layers (what include_top=False needs), Python-2 format, scaled-down fc
    layers = {name: [make_array(name, 0), make_array(name, 1)]
              for name in VGG19_SHAPES if name.startswith('conv')}
    path = write_python2_npy(str(tmp_path / 'conv.npy'), layers)
    images = _images(1, 32)
    with tf.Graph().as_default():
        rgb = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        vgg = Vgg19(path, attention=None, include_top=False)
        vgg.build(rgb)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            conv1_1 = sess.run(vgg.conv1_1, {rgb: images})
    # NumPy reference for the first layer: BGR, mean, 3x3 'SAME' conv, bias, relu
    bgr = images[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68], np.float32)
    padded = np.pad(bgr, ((0, 0), (1, 1), (1, 1), (0, 0)))
    w, b = layers['conv1_1']
    ref = sum(np.einsum('nhwc,co->nhwo', padded[:, i:i + 32, j:j + 32], w[i, j])
              for i in range(3) for j in range(3)) + b
    np.testing.assert_allclose(conv1_1, np.maximum(ref, 0), rtol=1e-4, atol=1e-3)


def test_include_top_false_any_size_and_wrong_size_with_top(vgg19_npy):
    with tf.Graph().as_default():
        rgb = tf1.placeholder(tf.float32, [None, 100, 60, 3])
        vgg = Vgg19(vgg19_npy, include_top=False)
        vgg.build(rgb)
        assert vgg.attention_output.shape.as_list() == [None, 4, 2, 512]
        assert vgg.fc6 is None and vgg.prob is None
        assert not any(k[0].startswith('fc') for k in vgg.var_dict)
    with tf.Graph().as_default() as graph:
        vgg = Vgg19(vgg19_npy)
        rgb = tf1.placeholder(tf.float32, [None, 64, 64, 3])
        ops_before = len(graph.get_operations())
        with pytest.raises(ValueError, match=r'pool5 \[2, 2, 512\].*fc6 in .* takes 25088 '
                           r'.*224x224.*include_top=False'):
            vgg.build(rgb)
        assert len(graph.get_operations()) == ops_before  # refused before any op exists
        vgg.build(tf1.placeholder(tf.float32, [None, 224, 224, 3]))  # the instance is usable
    with tf.Graph().as_default():
        vgg = Vgg19(vgg19_npy)
        with pytest.raises(ValueError, match='static input height and width'):
            vgg.build(tf1.placeholder(tf.float32, [None, None, None, 3]))


def test_fresh_network_any_size_and_fc6_width_follows_pool5(graph):
    vgg = Vgg19(None, num_classes=7)
    vgg.build(tf1.placeholder(tf.float32, [None, 64, 96, 3]))
    assert vgg.var_dict[('fc6', 0)].shape.as_list() == [2 * 3 * 512, 4096]
    assert vgg.fc8.shape.as_list() == [None, 7]


def _dropout_net(dropout, trainable=True, train_mode='placeholder'):
    rgb = tf1.placeholder(tf.float32, [None, 32, 32, 3])
    mode = tf1.placeholder(tf.bool, []) if train_mode == 'placeholder' else train_mode
    vgg = Vgg19(None, dropout=dropout, trainable=trainable, attention=None)
    vgg.build(rgb, mode)
    return rgb, mode, vgg


def test_dropout_is_the_fraction_dropped_and_only_when_training(graph):
    rgb, mode, vgg = _dropout_net(0.25)
    images = _images(8, 32)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        fc6, relu6 = sess.run([vgg.fc6, vgg.relu6], {rgb: images, mode: True})
        active = fc6 > 0
        dropped = np.mean(relu6[active] == 0)
        assert abs(dropped - 0.25) < 0.03, dropped  # rate, not keep_prob
        np.testing.assert_allclose(relu6[relu6 > 0], fc6[relu6 > 0] / 0.75, rtol=1e-5)
        a, b = (sess.run(vgg.fc8, {rgb: images, mode: False}) for _ in range(2))
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(sess.run(vgg.relu6, {rgb: images, mode: False}),
                                      np.maximum(fc6, 0))


def test_dropout_without_train_mode_follows_trainable(graph):
    rgb, _, vgg = _dropout_net(0.5, trainable=True, train_mode=None)
    frozen_rgb, _, frozen = _dropout_net(0.5, trainable=False, train_mode=None)
    images = _images(2, 32)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        a, b = (sess.run(vgg.fc8, {rgb: images}) for _ in range(2))
        assert not np.array_equal(a, b)  # tensorflow-vgg's rule: trainable drops
        c, d = (sess.run(frozen.fc8, {frozen_rgb: images}) for _ in range(2))
        np.testing.assert_array_equal(c, d)


def test_trainable_false_freezes_everything(graph):
    vgg = Vgg19(None, trainable=False)
    vgg.build(tf1.placeholder(tf.float32, [None, 32, 32, 3]))
    assert tf1.trainable_variables() == []
    assert len(tf1.global_variables()) == 2 * len(VGG19_SHAPES) + 9
    # CBAM's batch norm is in inference mode: no moving-average updates
    assert tf1.get_collection(tf1.GraphKeys.UPDATE_OPS) == []


def test_cbam_batch_norm_updates_follow_train_mode(graph):
    rgb = tf1.placeholder(tf.float32, [None, 32, 32, 3])
    mode = tf1.placeholder(tf.bool, [])
    vgg = Vgg19(None, include_top=False)
    vgg.build(rgb, mode)
    updates = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
    assert updates
    mean = vgg.var_dict[('cbam_0', 'SpatialAttention/BatchNorm/moving_mean')]
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        sess.run(updates, {rgb: _images(2, 32), mode: False})
        assert sess.run(mean)[0] == 0.0
        sess.run(updates, {rgb: _images(2, 32), mode: True})
        assert sess.run(mean)[0] != 0.0


def test_every_variable_is_a_resource_variable_in_both_behaviours(graph, tf_behavior):
    # Under disable_v2_behavior() tf.compat.v1.Variable and slim's model_variable
    # make RefVariables, whose initializer copies the buffer read from the file.
    vgg = Vgg19(None, num_classes=5)
    vgg.build(tf1.placeholder(tf.float32, [None, 32, 32, 3]), tf1.placeholder(tf.bool, []))
    assert len(tf1.global_variables()) == 2 * len(VGG19_SHAPES) + 9
    assert set(tf1.global_variables()) == set(vgg.var_dict.values())
    for var in tf1.global_variables():
        assert isinstance(var, resource_variable_ops.ResourceVariable), (tf_behavior, var)


@pytest.mark.parametrize('attention, trainable', [('cbam', True), ('cbam', False),
                                                  (None, True)])
def test_slim_model_variables_are_every_weight_of_the_network(graph, attention, trainable):
    # One variable factory: conv, fc and CBAM variables are all slim model
    # variables, so slim.get_model_variables() lists the whole network.
    import slim_attention as slim  # pylint: disable=import-outside-toplevel
    vgg = Vgg19(None, attention=attention, trainable=trainable, num_classes=5)
    vgg.build(tf1.placeholder(tf.float32, [None, 32, 32, 3]), tf1.placeholder(tf.bool, []))
    model = slim.get_model_variables()
    assert model == tf1.global_variables()
    assert set(model) == set(vgg.var_dict.values())
    assert len(model) == 2 * len(VGG19_SHAPES) + (9 if attention else 0)
    expected = [v for v in model if 'moving_' not in v.op.name] if trainable else []
    assert tf1.trainable_variables() == expected
    assert slim.get_model_variables('conv4_2') == [vgg.var_dict[('conv4_2', 0)],
                                                   vgg.var_dict[('conv4_2', 1)]]


def test_static_shapes_read_as_ints_in_both_behaviours(graph):
    # The call that crashed under disable_v2_behavior() (Dimension arithmetic),
    # and the messages, which print shapes the same way in both behaviours.
    vgg = Vgg19(None, attention=None, trainable=False, num_classes=3)
    vgg.build(tf1.placeholder(tf.float32, [2, 33, 64, 3]))
    assert vgg.var_dict[('fc6', 0)].shape.as_list() == [2 * 2 * 512, 4096]
    assert vgg.fc8.shape.as_list() == [2, 3]
    with pytest.raises(ValueError, match=r'static input height and width; rgb has shape '
                                         r'\(None, None, None, 3\)'):
        Vgg19(None).build(tf1.placeholder(tf.float32, [None, None, None, 3]))
    with pytest.raises(ValueError, match=r'got shape \(1, 32, 32, None\)'):
        Vgg19(None).build(tf1.placeholder(tf.float32, [1, 32, 32, None]))


def test_train_after_a_forward_run_with_a_train_mode_placeholder(graph):
    # tensorflow-vgg's test_vgg19_trainable.py: build with a train_mode
    # placeholder, run prob, THEN build the optimizer and train. A TF2 tf.cond
    # on train_mode could not be differentiated once it had run.
    tf1.set_random_seed(0)
    rgb = tf1.placeholder(tf.float32, [2, 32, 32, 3])
    labels = tf1.placeholder(tf.float32, [2, 4])
    train_mode = tf1.placeholder(tf.bool, [])
    vgg = Vgg19(None, num_classes=4)
    vgg.build(rgb, train_mode)
    images, onehot = _images(2, 32), np.eye(4, dtype=np.float32)[[1, 3]]
    moving_mean = vgg.var_dict[('cbam_0', 'SpatialAttention/BatchNorm/moving_mean')]
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        first = sess.run(vgg.prob, {rgb: images, train_mode: False})
        cost = tf.reduce_sum((vgg.prob - labels) ** 2)
        with tf.control_dependencies(tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)):
            train = tf1.train.GradientDescentOptimizer(0.0001).minimize(cost)
        feed = {rgb: images, labels: onehot, train_mode: True}
        before = sess.run(cost, {rgb: images, labels: onehot, train_mode: False})
        sess.run(train, feed)
        after = sess.run(cost, {rgb: images, labels: onehot, train_mode: False})
        assert sess.run(moving_mean)[0] != 0.0  # CBAM's batch norm trained too
        # the first run was not disturbed by what was built after it
        assert first.shape == (2, 4) and np.isfinite(after)
    assert after != before


def test_bad_files_fail_in_the_constructor(tmp_path):
    layers = {name: [make_array(name, 0), make_array(name, 1)]
              for name in ('conv1_1', 'conv1_2')}
    path = write_indexed_npy(str(tmp_path / 'partial.npy'), layers)
    with pytest.raises(WeightsFileError, match=r"layer 'conv2_1' is missing"):
        Vgg19(path)
    layers['conv1_2'][0] = layers['conv1_2'][0][..., :32]
    layers.update({name: [make_array(name, 0), make_array(name, 1)]
                   for name in VGG19_SHAPES if name.startswith('conv')
                   and name not in layers})
    write_indexed_npy(path, layers)
    with pytest.raises(WeightsFileError, match=r"wrong shape for layer 'conv1_2' weights: "
                       r"found \[3, 3, 64, 32\], expected \[3, 3, 64, 64\]"):
        Vgg19(path)
    with pytest.raises(ValueError, match='no such weights file.*tensorflow-vgg'):
        Vgg19(str(tmp_path / 'vgg19.npy'))
    target = tmp_path / 'ran'
    evil = tmp_path / 'evil.npy'
    with open(evil, 'wb') as f:  # a pickled dict whose layer is a call to os.system
        np.lib.format.write_array_header_1_0(
            f, {'descr': '|O', 'fortran_order': False, 'shape': ()})
        command = b'touch ' + str(target).encode()
        f.write(b'\x80\x02}U\x07conv1_1cos\nsystem\nU' + bytes([len(command)]) + command
                + b'\x85Rs.')
    with pytest.raises(WeightsFileError, match="refused.*'os.system'"):
        Vgg19(str(evil))
    assert not target.exists()


def test_argument_validation(graph):
    with pytest.raises(ValueError, match=r'dropout must be in \[0, 1\)'):
        Vgg19(dropout=1.0)
    with pytest.raises(TypeError, match='dropout'):
        Vgg19(dropout='0.5')
    with pytest.raises(ValueError, match="attention must be 'cbam' or None, got 'se'"):
        Vgg19(attention='se')
    with pytest.raises(ValueError, match='num_classes'):
        Vgg19(num_classes=0)
    with pytest.raises(TypeError, match='trainable'):
        Vgg19(trainable='yes')
    vgg = Vgg19(None, include_top=False)
    with pytest.raises(TypeError, match='float32'):
        vgg.build(tf1.placeholder(tf.float64, [None, 32, 32, 3]))
    with pytest.raises(ValueError, match=r'\[batch, height, width, 3\]'):
        vgg.build(tf1.placeholder(tf.float32, [None, 32, 32, 4]))
    with pytest.raises(TypeError, match='train_mode'):
        vgg.build(tf1.placeholder(tf.float32, [None, 32, 32, 3]), tf.constant(1.0))
    vgg.build(tf1.placeholder(tf.float32, [None, 32, 32, 3]))
    with pytest.raises(ValueError, match='already called'):
        vgg.build(tf1.placeholder(tf.float32, [None, 32, 32, 3]))


def test_checkpoint_restores_without_the_initializer(tmp_path):
    """A Saver checkpoint is the way to move a network built from an npy elsewhere."""
    layers = {name: [make_array(name, 0), make_array(name, 1)]
              for name in VGG19_SHAPES if name.startswith('conv')}
    npy = write_python2_npy(str(tmp_path / 'conv.npy'), layers)
    images = _images(1, 32, seed=2)
    with tf.Graph().as_default():
        rgb = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        vgg = Vgg19(npy, include_top=False)
        vgg.build(rgb, train_mode=False)
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            expected = sess.run(vgg.attention_output, {rgb: images})
            checkpoint = saver.save(sess, str(tmp_path / 'model.ckpt'))
    with tf.Graph().as_default():
        rgb = tf1.placeholder(tf.float32, [None, 32, 32, 3])
        vgg = Vgg19(None, include_top=False)  # fresh: every value comes from the checkpoint
        vgg.build(rgb, train_mode=False)
        with tf1.Session() as sess:
            tf1.train.Saver().restore(sess, checkpoint)
            np.testing.assert_array_equal(sess.run(vgg.attention_output, {rgb: images}),
                                          expected)


def test_file_removed_before_initialisation_is_reported(tmp_path):
    layers = {name: [make_array(name, 0), make_array(name, 1)]
              for name in VGG19_SHAPES if name.startswith('conv')}
    path = write_python2_npy(str(tmp_path / 'conv.npy'), layers)
    with tf.Graph().as_default():
        vgg = Vgg19(path, include_top=False)
        vgg.build(tf1.placeholder(tf.float32, [None, 32, 32, 3]))
        (tmp_path / 'conv.npy').unlink()  # the weights are read at initialisation
        with tf1.Session() as sess:
            with pytest.raises(tf.errors.OpError) as info:
                sess.run(tf1.global_variables_initializer())
    assert 'WeightsFileError: %s was removed after the network was built' % path in str(
        info.value)
