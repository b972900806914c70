"""slim-attention-train: every --model in the trainer's graph, the demo end to
end (resume, export, slim-attention-predict), and --checkpoint from a
checkpoint in the model zoo's resnet_v1_50.ckpt format.

Sizes are the smallest each net takes (ResNets 32 px, VGGs 224 px, graphs
only); the deeper ResNets' graphs take long to build and are marked slow.
"""
import os

import numpy as np
import pytest
import tensorflow as tf
import tf_slim.nets as tf_slim_nets

import slim_attention as slim
from slim_attention import nets
from vgg_patch.cli import predict as predict_cli
from vgg_patch.cli import slim_predict
from vgg_patch.cli import slim_train
from vgg_patch.training import run_dir, slim_export, slim_models
from vgg_patch.training.graph import build_graph
from vgg_patch.training.slim_network import SlimNetwork, choose_conv_path, restore_map

tf1 = tf.compat.v1

# The VGGs (graphs of a few seconds) with and without attention; each ResNet
# (12-25 s a graph) once, one with attention and one without: the trainer treats
# attention alike in every model, and test_nets_*.py build every model with
# every block. The deeper ResNets differ from the 50-layer ones only in their
# unit counts (tests/test_nets_resnet.py checks those for every depth); one of
# them is built here, as each takes 20-50 s and the suite runs twice in CI.
CASES = ([pytest.param(m, a) for m in ("vgg_a", "vgg_16", "vgg_19") for a in ("none", "cbam")]
         + [pytest.param("resnet_v1_50", "cbam"), pytest.param("resnet_v2_50", "none")]
         + [pytest.param("resnet_v1_101", "cbam", marks=pytest.mark.slow)])


def _args(model, attention="none", *extra):
    size = "32" if model.startswith("resnet") else "224"
    parser = slim_train.build_parser()
    return slim_train.resolve_slim_config(parser.parse_args(
        ["--model", model, "--attention", attention, "--data-dir", "unused",
         "--image-size", size, "--batch-size", "2"] + list(extra)))


@pytest.mark.parametrize("model,attention", CASES)
def test_every_model_builds_in_the_trainer_graph(graph, model, attention):
    args = _args(model, attention)
    network = SlimNetwork(model, 3, args.attention, class_names=list("abc"),
                          image_size=args.image_size)
    built = build_graph(args, 3, steps_per_epoch=2, total_steps=4, network=network)
    assert built.network is network
    logits = graph.get_tensor_by_name(built.predictions.op.inputs[0].name)
    assert logits.shape.as_list() == [None, 3]
    names = {v.op.name for v in built.model_variables}
    assert all(n.startswith(model + "/") for n in names)
    assert not any("Adam" in n for n in names)  # the network's only, no slots
    scopes = tuple(nets.attention_scopes(model + "/"))
    if attention == "none":
        assert not scopes and built.attention_fetch[1] is None
    else:
        in_blocks = {n for n in names if n.startswith(scopes)}
        trained = {v.op.name for v in built.trainable if v.op.name.startswith(scopes)}
        assert in_blocks and trained and trained < in_blocks  # + moving statistics
        assert built.attention_fetch[1].shape.as_list()[-1] == 1
    assert set(built.best_saver._var_list) >= set(built.model_variables)  # noqa


def test_the_run_says_which_convolutions_it_runs():
    args = _args("resnet_v1_50", "cbam")
    path = choose_conv_path("resnet_v1_50", None, False, 32, True)
    assert (args.winograd, args.conv_path) == (path.winograd, path.reason)
    args = _args("resnet_v1_50", "none", "--no-winograd")
    assert args.conv_path == "convolutions: direct (--no-winograd)"


def test_image_size_and_flags_are_checked(capsys):
    for argv, expected in (
            (["--model", "vgg_16", "--image-size", "64", "--data-dir", "x"], "224-255"),
            (["--model", "resnet_v1_50", "--image-size", "16", "--data-dir", "x"],
             "at least 32"),
            (["--model", "resnet_v1_50", "--attention", "cbam",
              "--attention-params", "[8]"], "JSON object"),
            (["--model", "resnet_v1_50", "--attention", "se",
              "--attention-params", '{"nope": 1}'], "'nope' not accepted"),
            (["--model", "resnet_v1_50", "--checkpoint", "/no/such.ckpt"],
             "no such checkpoint")):
        assert slim_train.main(argv) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err


def test_demo_resumes_exports_and_predicts(tmp_path, capsys):
    """The command of the README, at 32 px and a few steps: run, rerun (resume), predict."""
    train_dir = str(tmp_path / "run")
    # Small batches and a 2% validation split (36 of the 1797 digits): each run
    # validates once; momentum: one slot per weight, smaller checkpoints.
    argv = ["--model", "resnet_v1_50", "--attention", "cbam", "--train-dir", train_dir,
            "--image-size", "32", "--batch-size", "4", "--val-fraction", "0.02",
            "--attention-images", "1", "--optimizer", "momentum", "-q"]
    assert slim_train.main(argv + ["--max-steps", "2"]) == 0
    assert sorted(s for s, _ in run_dir.checkpoint_candidates(train_dir)) == [2]
    run = run_dir.read_run_settings(train_dir)
    assert (run["model"], run["attention"], run["image_size"]) == ("resnet_v1_50",
                                                                   "cbam", 32)
    capsys.readouterr()
    # Resumed on the other convolution path: its checkpoints are the same.
    assert slim_train.main(argv + ["--max-steps", "3", "--winograd"]) == 0
    assert max(s for s, _ in run_dir.checkpoint_candidates(train_dir)) == 3
    assert "3 steps" in capsys.readouterr().out  # resumed at 2, one more step
    export = slim_export.read(train_dir)
    assert (export["model"], export["attention"], export["num_classes"],
            export["classes"]) == ("resnet_v1_50", "cbam", 10, [str(d) for d in range(10)])
    stored = dict(tf1.train.list_variables(export["checkpoint"]))
    assert "resnet_v1_50/block1/unit_1/bottleneck_v1/CBAM/SpatialAttention/conv/weights" \
        in stored and not any(n.startswith(("global_step", "train_state")) for n in stored)
    # Another model in the same folder is refused.
    assert slim_train.main(["--model", "resnet_v2_50", "--train-dir", train_dir,
                            "--image-size", "32", "-q"]) == 2
    assert "model='resnet_v1_50'" in capsys.readouterr().err
    images = [os.path.join(train_dir, run_dir.DEMO_DATA_DIR, d, n)
              for d in ("3", "7") for n in sorted(os.listdir(
                  os.path.join(train_dir, run_dir.DEMO_DATA_DIR, d)))[:1]]
    out_png = str(tmp_path / "att.png")
    assert slim_predict.main(["--train-dir", train_dir, "--attention-map", out_png]
                             + images) == 0
    out = capsys.readouterr().out
    assert all(p in out for p in images) and os.path.getsize(out_png) > 0
    # vgg19-cbam-predict points to the right command.
    assert predict_cli.main(["--train-dir", train_dir] + images) == 2
    assert "slim-attention-predict --train-dir" in capsys.readouterr().err


def _zoo_checkpoint(path, model_fn, **kwargs):
    """Writes tf-slim's network (1000 classes) with tf.compat.v1.train.Saver V2."""
    with tf.Graph().as_default():
        images = tf1.placeholder(tf.float32, [1, 32, 32, 3])
        with slim.arg_scope(tf_slim_nets.resnet_v1.resnet_arg_scope()):
            model_fn(images, 1000, is_training=False, **kwargs)
        variables = tf1.global_variables()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            # Distinct from any initializer: every value must come from the file.
            values = {v.op.name: sess.run(v) + 0.5 for v in variables}
            for v in variables:
                v.load(values[v.op.name], sess)
            tf1.train.Saver(write_version=tf1.train.SaverDef.V2).save(
                sess, path, write_meta_graph=False)
    return values


def _write(path, values):
    """A V2 checkpoint holding ``values`` ({name: array}) under their names."""
    with tf.Graph().as_default():
        variables = [tf1.get_variable(name, value.shape, tf.float32)
                     for name, value in values.items()]
        with tf1.Session() as sess:
            for var, value in zip(variables, values.values()):
                var.load(value, sess)
            tf1.train.Saver(variables).save(sess, path, write_meta_graph=False)
    return path


def test_checkpoint_restores_the_base_and_leaves_attention_and_logits_fresh(tmp_path):
    zoo = str(tmp_path / "resnet_v1_50.ckpt")
    values = _zoo_checkpoint(zoo, tf_slim_nets.resnet_v1.resnet_v1_50)
    assert dict(tf1.train.list_variables(zoo))["resnet_v1_50/logits/weights"] == [
        1, 1, 2048, 1000]
    with tf.Graph().as_default():
        network = SlimNetwork("resnet_v1_50", 3, "cbam", checkpoint=zoo)
        network.build(tf1.placeholder(tf.float32, [None, 32, 32, 3]), False)
        variables = network.model_variables()
        attention = {v.op.name for v in nets.attention_variables("resnet_v1_50/")}
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            got = dict(zip([v.op.name for v in variables], sess.run(variables)))
        # Errors: another model's checkpoint, a shape that differs, no file.
        other = _write(str(tmp_path / "other.ckpt"),
                       {"vgg_16/conv1/conv1_1/weights": np.zeros([3, 3, 3, 64])})
        with pytest.raises(ValueError, match="is not a resnet_v1_50 checkpoint: it "
                                             "lacks 265 of its variables"):
            restore_map(other, "resnet_v1_50", "logits", sorted(attention))
        wrong = _write(str(tmp_path / "wrong.ckpt"),
                       {"resnet_v1_50/conv1/weights": np.zeros([7, 7, 1, 64])})
        with pytest.raises(ValueError, match=r"does not fit resnet_v1_50: resnet_v1_50/"
                                             r"conv1/weights is \[7, 7, 1, 64\] in it"):
            restore_map(wrong, "resnet_v1_50", "logits", sorted(attention))
        with pytest.raises(ValueError, match="no such checkpoint"):
            restore_map(str(tmp_path / "none.ckpt"), "resnet_v1_50", "logits", [])
    restored = [n for n in got if n not in attention and "/logits/" not in n]
    assert len(restored) == 265 and len(attention) == 16 * 9
    for name in restored:
        np.testing.assert_array_equal(got[name], values[name], name)
    assert got["resnet_v1_50/logits/weights"].shape == (1, 1, 2048, 3)
    assert not got["resnet_v1_50/logits/biases"].any()  # fresh: zeros
    gamma = "resnet_v1_50/block1/unit_1/bottleneck_v1/CBAM/SpatialAttention/BatchNorm/gamma"
    assert not got[gamma].any()  # fresh: CBAM's zero-initialised gamma
