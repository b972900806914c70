"""vgg19-cbam-predict helpers: colours, the attention figure, class names, arguments.

The end-to-end predict tests (a trained run, top-5 output, the PNG) are in
test_train_cli.py, which trains the run they need.
"""
import numpy as np
import pytest
import tensorflow as tf

from vgg_patch import predict
from vgg_patch import train


def test_colorize_is_blue_to_red():
    rgb = predict.colorize(np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(rgb[0], [0.0, 0.0, 0.5])   # dark blue
    np.testing.assert_allclose(rgb[1], [0.5, 1.0, 0.5])   # green
    np.testing.assert_allclose(rgb[2], [0.5, 0.0, 0.0])   # dark red
    assert predict.colorize(np.zeros((2, 3))).shape == (2, 3, 3)


def test_summary_overlay_matches_the_png_colours(graph):
    # The TensorBoard image (train.attention_overlay) and the predict PNG use the
    # same normalisation and colours: compare at a size where no resize happens.
    rng = np.random.RandomState(0)
    images = rng.uniform(size=(2, 4, 4, 3)).astype(np.float32)
    maps = rng.uniform(size=(2, 4, 4, 1)).astype(np.float32)
    maps[1] = 0.5  # constant map: shown as 0.5
    with tf.compat.v1.Session() as sess:
        tb = sess.run(train.attention_overlay(tf.constant(images), tf.constant(maps)))
    assert tb.shape == (2, 4, 8, 3)
    np.testing.assert_allclose(tb[..., :4, :], images, atol=1e-6)
    for i in range(2):
        m = maps[i, ..., 0]
        norm = (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else m * 0 + 0.5
        expected = 0.5 * images[i] + 0.5 * predict.colorize(norm)
        np.testing.assert_allclose(tb[i, :, 4:], expected, atol=1e-5)


def test_attention_figure_layout_and_peak():
    images = np.zeros((2, 32, 32, 3), np.float32)
    maps = np.zeros((2, 2, 2, 1), np.float32)
    maps[0, 0, 1, 0] = 1.0          # image 0 looks top-right
    maps[1, 1, 0, 0] = 1.0          # image 1 looks bottom-left
    fig = predict.attention_figure(images, maps, display_size=64)
    assert fig.shape == (128, 128, 3) and fig.dtype == np.uint8
    overlay0, overlay1 = fig[:64, 64:], fig[64:, 64:]
    assert fig[:64, :64].max() == 0                     # the black input
    # red (high attention) strongest in the attended quadrant, blue elsewhere
    assert overlay0[:32, 32:, 0].mean() > overlay0[32:, :32, 0].mean() + 50
    assert overlay1[32:, :32, 0].mean() > overlay1[:32, 32:, 0].mean() + 50
    assert overlay0[48:, :16, 2].mean() > overlay0[48:, :16, 0].mean()


def test_read_class_names_plain_and_synset(tmp_path):
    plain = tmp_path / "classes.txt"
    plain.write_text("cat\ndog\n\n")
    assert predict.read_class_names(str(plain)) == ["cat", "dog"]
    synset = tmp_path / "synset.txt"
    synset.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    assert predict.read_class_names(str(synset), synset=True) == [
        "tench, Tinca tinca", "goldfish, Carassius auratus"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(predict.UsageError, match="is empty"):
        predict.read_class_names(str(empty))
    with pytest.raises(predict.UsageError, match="does not exist"):
        predict.read_class_names(str(tmp_path / "none.txt"))


def test_weights_without_class_names_is_a_usage_error(tmp_path, capsys):
    weights = tmp_path / "w.npy"
    weights.write_bytes(b"x")
    image = tmp_path / "a.png"
    image.write_bytes(b"x")
    rc = predict.main(["--weights", str(weights), "--train-dir", str(tmp_path), str(image)])
    err = capsys.readouterr().err
    assert rc == 2 and "no class names: give --synset synset.txt" in err
    rc = predict.main(["--weights", str(weights), "--synset", str(tmp_path / "s.txt"),
                       "--no-attention", "--attention-map", "x.png", str(image)])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
