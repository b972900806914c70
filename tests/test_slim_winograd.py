"""Winograd in slim's networks: the rule, the injection, and its exactness.

``slim-attention-train`` and ``slim-attention-predict`` compute some 3x3
convolutions by Winograd F(2x2, 3x3) by default
(:func:`vgg_patch.training.slim_network.choose_conv_path`), through
:mod:`vgg_patch.slim_winograd`. Checked here, on a tiny ResNet (three blocks
of two units, 8-16 channels, 32 px) with all its stride-1 3x3 convolutions
on Winograd, against the same network computed directly:

* only the stride-1 ``conv2`` of the chosen blocks is replaced, and tf-slim
  creates the same variables (names and shapes) either way;
* on a generated test set, top-1 agrees for >= 99.9% of images and the
  logits to <= 1e-5 relative (max |difference| / max |direct logit|);
* a training step taken on either path, saved and restored into the other,
  gives the same logits within 1e-5: checkpoints and exports (a checkpoint
  of the model variables) move between the paths.
"""
import numpy as np
import pytest
import tensorflow as tf

import slim_attention as slim
import test_winograd_exactness as exactness
from slim_attention.nets import resnet_v1, resnet_v2
from vgg_patch import fastpath, slim_winograd
from vgg_patch.cli import slim_predict
from vgg_patch.training import slim_network
from vgg_patch.training.slim_network import SlimNetwork

tf1 = tf.compat.v1

SIZE = 32
NUM_CLASSES = 10
REL_TOL = exactness.REL_TOL
FAMILIES = {"v1": resnet_v1, "v2": resnet_v2}


def test_the_resnet_rule_follows_the_table():
    # docs/benchmarks.md, "Winograd in slim's networks": block1 never; training
    # from 57 px (block2 side 8) down to block4's 2 x 2 at 33 px; inference at
    # batch >= 16: block2 from 57 px, block4 from 129, block3 from 145; never
    # at batch 1.
    assert fastpath.resnet_winograd_blocks(64, True) == ("block2", "block3", "block4")
    assert fastpath.resnet_winograd_blocks(33, True) == ("block4",)
    assert fastpath.resnet_winograd_blocks(32, True) == ()
    assert fastpath.resnet_winograd_blocks(64, False) == ("block2",)
    assert fastpath.resnet_winograd_blocks(129, False) == ("block2", "block4")
    assert fastpath.resnet_winograd_blocks(224, False) == ("block2", "block3", "block4")
    assert fastpath.resnet_winograd_blocks(224, False, batch=1) == ()
    assert [fastpath.resnet_side(224, b) for b in fastpath.RESNET_BLOCKS] == [56, 28, 14, 7]


def test_the_rule_per_model():
    for model in ("resnet_v1_50", "resnet_v2_101"):
        for training in (True, False):
            path = slim_network.choose_conv_path(model, None, False, 64, training,
                                                 gpu=False)
            assert path.winograd == fastpath.resnet_winograd_blocks(64, training)
            assert path.reason.startswith("convolutions: ") and "\n" not in path.reason
    vgg = slim_network.choose_conv_path("vgg_16", None, False, 224, True, gpu=False)
    assert vgg.winograd == tuple(n for n in fastpath.winograd_layers(224, True)
                                 if n[-1] in "123")  # vgg_16 has no conv*_4
    forced = slim_network.choose_conv_path("resnet_v2_50", True, False, 32, True)
    assert forced.winograd == fastpath.RESNET_BLOCKS and "(--winograd)" in forced.reason
    for flag, bf16, gpu, says in ((False, False, False, "--no-winograd"),
                                  (None, True, False, "--bf16"),
                                  (None, False, True, "GPU")):
        path = slim_network.choose_conv_path("resnet_v1_50", flag, bf16, 224, True,
                                             gpu=gpu)
        assert path.winograd == () and says in path.reason, (flag, bf16, gpu)


def test_scope_matcher_takes_the_chosen_3x3_scopes_only():
    match = slim_winograd.scope_matcher(("block2", "conv4_1"))
    assert match("resnet_v1_50/block2/unit_3/bottleneck_v1/conv2")
    assert match("tower/resnet_v2_50/block2/unit_1/bottleneck_v2/conv2")
    assert match("vgg_16/conv4/conv4_1")
    for scope in ("resnet_v1_50/block1/unit_1/bottleneck_v1/conv2",
                  "resnet_v1_50/block2/unit_1/bottleneck_v1/conv1",
                  "resnet_v1_50/block2/unit_1/bottleneck_v1/conv2/CBAM",
                  "vgg_16/conv4/conv4_2", "vgg_16/conv4/conv4_1/CBAM/spatial"):
        assert not match(scope), scope
    assert slim_winograd.plain_3x3([1, 1], "SAME", "NHWC", [1, 1])
    assert not slim_winograd.plain_3x3([2, 2], "SAME", "NHWC", [1, 1])
    assert not slim_winograd.plain_3x3([1, 1], "VALID", "NHWC", [1, 1])
    assert not slim_winograd.plain_3x3([1, 1], "SAME", "NHWC", [2, 2])


def _tiny(family, images, is_training):
    """Three blocks of two units; the last unit of blocks 1-2 has stride 2."""
    module = FAMILIES[family]
    blocks = [module.resnet_v1_block if family == "v1" else module.resnet_v2_block]
    blocks = [blocks[0]("block1", 8, 2, 2), blocks[0]("block2", 8, 2, 2),
              blocks[0]("block3", 16, 2, 1)]
    fn = resnet_v1.resnet_v1 if family == "v1" else resnet_v2.resnet_v2
    with slim.arg_scope(module.resnet_arg_scope()):
        net, _ = fn(images, blocks, NUM_CLASSES, is_training=is_training,
                    scope="resnet_" + family)
    return tf.reshape(net, [-1, NUM_CLASSES])


def _build(family, winograd):
    """The tiny ResNet and a momentum step, on images in [0, 1] scaled to
    [-1, 1] as ResNet v2's preprocessing does (uncentred, the random network
    gives every image one class)."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(3)
        images = tf1.placeholder(tf.float32, [None, SIZE, SIZE, 3])
        labels = tf1.placeholder(tf.int64, [None])
        if winograd:
            with slim_winograd.winograd_convolutions(slim_winograd.scope_matcher(
                    fastpath.RESNET_BLOCKS)) as chosen:
                logits = _tiny(family, images * 2.0 - 1.0, False)
        else:
            logits, chosen = _tiny(family, images * 2.0 - 1.0, False), []
        loss = tf1.losses.sparse_softmax_cross_entropy(labels, logits)
        step = tf1.train.MomentumOptimizer(1e-2, 0.9).minimize(loss)
        init = tf1.global_variables_initializer()
        saver = tf1.train.Saver(slim.get_model_variables())
    sess = tf1.Session(graph=graph)
    sess.run(init)
    return dict(sess=sess, images=images, labels=labels, logits=logits, step=step,
                saver=saver, chosen=chosen,
                variables=[(v.op.name, v.shape.as_list()) for v in
                           graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)])


@pytest.fixture(scope="module")
def tiny():
    """``tiny(family)``: the Winograd and the direct network (built once per
    module; the tests leave both with the same weights)."""
    built = {}

    def get(family):
        if family not in built:
            built[family] = _build(family, True), _build(family, False)
        return built[family]
    yield get
    for pair in built.values():
        for net in pair:
            net["sess"].close()


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("family", ["v1", "v2"])
def test_the_tiny_resnet_agrees_with_direct_on_a_generated_test_set(tiny, family):
    wino, direct = tiny(family)
    # The stride-1 units only: unit_2 of blocks 1-2 has stride 2.
    assert sorted(s.split("/")[1] + "/" + s.split("/")[2] for s in wino["chosen"]) == [
        "block1/unit_1", "block2/unit_1", "block3/unit_1", "block3/unit_2"]
    assert wino["variables"] == direct["variables"]
    images = exactness.test_set(250, size=SIZE)
    out = [net["sess"].run(net["logits"], {net["images"]: images})
           for net in (wino, direct)]
    agree = np.mean(np.argmax(out[0], 1) == np.argmax(out[1], 1))
    assert agree >= 0.999 and _rel(out[0], out[1]) <= REL_TOL, (agree, _rel(*out))
    assert len(set(np.argmax(out[1], 1))) > 1  # the test set is not one class


def test_checkpoints_move_between_the_paths(tiny, tmp_path):
    images = exactness.test_set(4, seed=1, size=SIZE)
    labels = np.arange(4) % NUM_CLASSES
    wino, direct = tiny("v1")
    for src, dst, name in ((wino, direct, "w"), (direct, wino, "d")):
        feed = {src["images"]: images, src["labels"]: labels}
        src["sess"].run(src["step"], feed)
        with src["sess"].graph.as_default():
            ckpt = src["saver"].save(src["sess"], str(tmp_path / name / "model.ckpt"))
        with dst["sess"].graph.as_default():
            dst["saver"].restore(dst["sess"], ckpt)
        before = src["sess"].run(src["logits"], {src["images"]: images})
        after = dst["sess"].run(dst["logits"], {dst["images"]: images})
        assert _rel(after, before) <= REL_TOL, name


def test_slim_network_builds_the_rules_convolutions_with_the_same_variables():
    built = {}
    for winograd in ((), ("block2", "block4")):
        graph = tf.Graph()
        with graph.as_default():
            network = SlimNetwork("resnet_v1_50", 3, winograd=winograd)
            network.build(tf1.placeholder(tf.float32, [None, SIZE, SIZE, 3]), False)
            built[winograd] = ([(v.op.name, v.shape.as_list())
                                for v in network.model_variables()],
                               {op.name.split("/")[1] for op in graph.get_operations()
                                if "/Winograd/" in op.name})
    assert built[()][0] == built[("block2", "block4")][0]
    assert built[()][1] == set() and built[("block2", "block4")][1] == {"block2", "block4"}


def test_slim_predict_refuses_winograd_with_bf16(capsys):
    assert slim_predict.main(["--train-dir", "/no/such/run", "x.png", "--winograd",
                              "--bf16"]) == 2
    assert "--winograd and --bf16 do not go together" in capsys.readouterr().err
