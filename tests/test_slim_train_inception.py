"""slim-attention-train with tf-slim's Inceptions: listed by --help, their
sizes checked, and the built-in demo's configuration trains (one step of
inception_v2 with CBAM, at 32 px and with a 2% validation split (39 of the
1797 digits) to keep the run's validation pass short, then its export)."""
import pytest
import tensorflow as tf

from vgg_patch.cli import slim_train
from vgg_patch.training import slim_export, slim_models
from vgg_patch.training.slim_network import SlimNetwork

tf1 = tf.compat.v1

INCEPTIONS = ("inception_v1", "inception_v2", "inception_v3")


def test_help_lists_the_inceptions(capsys):
    with pytest.raises(SystemExit):
        slim_train.main(["--help"])
    out = capsys.readouterr().out
    assert all(m in out for m in INCEPTIONS)


@pytest.mark.parametrize("model, bad, expected", [
    ("inception_v1", 225, "193-224"), ("inception_v2", 16, "at least 32"),
    ("inception_v3", 64, "at least 75")])
def test_image_sizes_are_checked(capsys, model, bad, expected):
    assert slim_train.main(["--model", model, "--image-size", str(bad),
                            "--data-dir", "x"]) == 2
    assert expected in capsys.readouterr().err


def test_specs_and_memory_estimate():
    for model, scope in zip(INCEPTIONS, ("InceptionV1", "InceptionV2", "InceptionV3")):
        spec = slim_models.get_spec(model)
        assert (spec.family, spec.preprocessing, spec.logits_scope) == (
            "inception", "inception", "Logits")
        assert slim_models.network_scope(spec) == scope
        slim_models.check_image_size(model, spec.demo_image_size)
        params, _ = slim_models.estimate_memory(model, spec.demo_image_size, 8, 10,
                                                "adam")
        assert params == slim_models.INCEPTION_COUNTS[spec.depth][0] + (
            slim_models.INCEPTION_COUNTS[spec.depth][1] + 1) * 10
    assert SlimNetwork("inception_v3", 10).batch_norm_decay == 0.9997


def test_demo_configuration_trains_one_step(tmp_path):
    train_dir = str(tmp_path / "run")
    assert slim_train.main(["--model", "inception_v2", "--attention", "cbam",
                            "--train-dir", train_dir, "--batch-size", "4",
                            "--image-size", "32", "--val-fraction", "0.02",
                            "--attention-images", "1", "--optimizer", "momentum",
                            "--max-steps", "1", "-q"]) == 0
    export = slim_export.read(train_dir)
    assert (export["model"], export["attention"], export["image_size"]) == (
        "inception_v2", "cbam", 32)
    stored = dict(tf1.train.list_variables(export["checkpoint"]))
    assert stored["InceptionV2/Mixed_3b/CBAM/ChannelAttention/fc1/weights"] == [256, 16]
    assert stored["InceptionV2/Logits/Conv2d_1c_1x1/weights"] == [1, 1, 1024, 10]
