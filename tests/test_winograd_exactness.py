"""The default Winograd path is exact enough: same top-1, same logits, same files.

The commands turn Winograd on by default where it pays
(:func:`vgg_patch.fastpath.winograd_layers`). These tests run VGG19 with
small synthetic weights at the smallest size where the rule turns it on,
with exactly the rule's layers, against the direct network:

* on a generated test set (noise, stripes, rings, solid colours), top-1
  agrees for >= 99.9% of images and the logits to <= 1e-5 relative
  (max |difference| / max |direct logit|);
* checkpoints and exports move between the paths: a training step taken
  with one path, restored into the other, gives the same logits within 1e-5.
"""
import numpy as np
import pytest
import tensorflow as tf

from vgg_patch import Vgg19, fastpath, layout

NUM_CLASSES = 10
REL_TOL = 1e-5


def _size_and_layers():
    """The smallest size at which the rule turns Winograd on, and its layers
    (the union of training's and inference's)."""
    for size in (32, 48, 64, 96, 112, 160, 224):
        layers = set(fastpath.winograd_layers(size, True))
        layers |= set(fastpath.winograd_layers(size, False))
        if layers:
            return size, tuple(n for n, _, _ in layout.CONV_LAYERS if n in layers)
    raise AssertionError("the rule never turns Winograd on")


SIZE, LAYERS = _size_and_layers()


def _weights(folder):
    path = str(folder / "vgg19_small.npy")
    side = layout.pool5_size(SIZE, SIZE)
    shapes = layout.layer_shapes(side[0] * side[1] * layout.POOL5_CHANNELS, NUM_CLASSES)
    return layout.write_synthetic_npy(path, seed=5, shapes=shapes)


@pytest.fixture(scope="module")
def npy(module_tmp_path):
    return _weights(module_tmp_path)


def test_set(count, seed=0, size=SIZE):
    """``count`` RGB images of ``size`` px in [0, 1]: a quarter each of noise,
    stripes, rings and solid colours with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / float(size)
    out = np.empty((count, size, size, 3), np.float32)
    for i in range(count):
        kind = i % 4
        if kind == 0:
            img = rng.random((size, size, 3))
        elif kind == 1:
            freq, phase = rng.uniform(2, 12), rng.uniform(0, 6)
            img = 0.5 + 0.5 * np.sin(freq * (xx * rng.uniform(-1, 1) + yy) * 6 + phase)
            img = img[..., None] * rng.random(3)
        elif kind == 2:
            cy, cx = rng.random(2)
            img = 0.5 + 0.5 * np.cos(np.hypot(xx - cx, yy - cy) * rng.uniform(10, 40))
            img = img[..., None] * rng.random(3)
        else:
            img = rng.random(3) + rng.normal(0, 0.05, (size, size, 3))
        out[i] = np.clip(img, 0, 1)
    return out


test_set.__test__ = False  # a helper, not a test


def _logits(npy, winograd, images, attention=None):
    graph = tf.Graph()
    with graph.as_default():
        rgb = tf.compat.v1.placeholder(tf.float32, [None, SIZE, SIZE, 3])
        vgg = Vgg19(npy, trainable=False, attention=attention, num_classes=NUM_CLASSES,
                    winograd=winograd)
        vgg.build(rgb)
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return np.concatenate([sess.run(vgg.fc8, {rgb: images[i:i + 100]})
                                   for i in range(0, len(images), 100)])


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_the_rules_layers_agree_with_direct_on_a_generated_test_set(npy):
    # >= 99.9% of 250 images: every one must agree (docs/benchmarks.md gives
    # the figures on 1000).
    images = test_set(250)
    direct = _logits(npy, False, images)
    wino = _logits(npy, LAYERS, images)
    agree = np.mean(np.argmax(wino, 1) == np.argmax(direct, 1))
    assert agree >= 0.999, (agree, SIZE, LAYERS)
    assert _rel(wino, direct) <= REL_TOL
    assert len(set(np.argmax(direct, 1))) > 1  # the test set is not one class


def _train_graph(npy, winograd):
    """VGG19+CBAM with a momentum step, a Saver of the network's variables and
    the logits, on a placeholder."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        rgb = tf.compat.v1.placeholder(tf.float32, [None, SIZE, SIZE, 3])
        labels = tf.compat.v1.placeholder(tf.int64, [None])
        vgg = Vgg19(npy, trainable=True, dropout=0.0, num_classes=NUM_CLASSES,
                    winograd=winograd)
        vgg.build(rgb, tf.constant(False))
        loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, vgg.fc8)
        step = tf.compat.v1.train.MomentumOptimizer(1e-2, 0.9).minimize(loss)
        init = tf.compat.v1.global_variables_initializer()
        # The network's variables (CBAM's moving statistics included), not the
        # momentum slots: the logits compared below depend on those alone, and
        # the checkpoints are half the size.
        saver = tf.compat.v1.train.Saver(list(vgg.var_dict.values()))
    sess = tf.compat.v1.Session(graph=graph)
    sess.run(init)
    return dict(sess=sess, rgb=rgb, labels=labels, vgg=vgg, step=step, saver=saver)


def test_checkpoints_and_exports_move_between_the_paths(npy, tmp_path):
    images = test_set(4, seed=1)
    labels = np.arange(4) % NUM_CLASSES
    wino, direct = _train_graph(npy, LAYERS), _train_graph(npy, False)
    try:
        for src, dst, name in ((wino, direct, "w"), (direct, wino, "d")):
            src["sess"].run(src["step"], {src["rgb"]: images, src["labels"]: labels})
            with src["sess"].graph.as_default():
                ckpt = src["saver"].save(src["sess"], str(tmp_path / name / "model.ckpt"))
            with dst["sess"].graph.as_default():
                dst["saver"].restore(dst["sess"], ckpt)
            before = src["sess"].run(src["vgg"].fc8, {src["rgb"]: images})
            after = dst["sess"].run(dst["vgg"].fc8, {dst["rgb"]: images})
            assert _rel(after, before) <= REL_TOL, name
        with wino["sess"].graph.as_default():
            export = wino["vgg"].save_npy(wino["sess"], str(tmp_path / "export.npy"))
        trained = wino["sess"].run(wino["vgg"].fc8, {wino["rgb"]: images})
    finally:
        wino["sess"].close()
        direct["sess"].close()
    # The export of a Winograd run, read back by the direct network (the other
    # way round is the checkpoint's above).
    assert _rel(_logits(export, False, images, attention="cbam"), trained) <= REL_TOL
