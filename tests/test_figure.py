"""The attention figure (vgg_patch.figure): fixed 0-1 scale, colour bar, values,
flat maps labelled and not stretched; the TensorBoard image is the same picture;
docs/make_attention_figure.py regenerates the README's example figure."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from vgg_patch import figure
from vgg_patch.training import summaries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _panel(fig, row, name):
    left, top, right, bottom = fig.boxes[row][name]
    return fig.pixels[top:bottom, left:right]


def _cell_corner(panel, h, w, i, j, margin=3):
    """A small patch inside cell (i, j), away from its text (centre) and grid lines."""
    size = panel.shape[0]
    y, x = (i * size) // h + margin, (j * size) // w + margin
    return panel[y:y + 4, x:x + 4].reshape(-1, 3)


def test_colorize_is_blue_to_red():
    rgb = figure.colorize(np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(rgb[0], [0.0, 0.0, 0.5])   # dark blue
    np.testing.assert_allclose(rgb[1], [0.5, 1.0, 0.5])   # green
    np.testing.assert_allclose(rgb[2], [0.5, 0.0, 0.0])   # dark red
    assert figure.colorize(np.zeros((2, 3))).shape == (2, 3, 3)
    np.testing.assert_array_equal(figure.colorize_uint8([0.5]), [[128, 255, 128]])


def test_flat_map_is_labelled_flat_and_not_stretched():
    # What the 3-epoch demo gave: 4 values within 4e-5 of each other.
    amap = np.array([[0.49959, 0.49961], [0.49962, 0.49963]], np.float32)
    images = np.random.RandomState(0).uniform(size=(1, 48, 48, 3)).astype(np.float32)
    fig = figure.attention_figure(images, amap[None], titles=["digit.png"])
    header = " ".join(fig.texts)  # the header wraps over lines
    assert "FLAT (spread 4e-05 < 0.01): the spatial gate has not learned a preference" \
        in header
    heat = _panel(fig, 0, "heat").reshape(-1, 3).astype(int)
    # Every pixel of the map panel that is not text or grid is the colour of
    # 0.4996 on the 0-1 scale: green, not blue-to-red.
    green = figure.colorize_uint8(0.4996).astype(int)
    close = np.abs(heat - green).max(axis=1) <= 1
    assert close.mean() > 0.9
    assert np.abs(figure.colorize_uint8(0.5).astype(int) - green).max() <= 1
    stats = figure.describe_map(amap)
    assert stats.flat and abs(stats.spread - 4e-5) < 1e-6
    assert stats.line == ("attention map 2x2: values 0.49959 to 0.49963 [0.49959  0.49961; "
                          "0.49962  0.49963]; flat: spread 4e-05 < 0.01; the spatial gate "
                          "has not learned a preference yet")
    # A 1x1 map is flat by nature: it says why.
    assert "one position only" in figure.describe_map(np.full((1, 1), 0.3)).line


def test_real_map_colours_follow_the_fixed_scale():
    # A map within [0.55, 0.65] is NOT stretched to blue..red: 0.55 stays
    # yellow-green; and a wide map shows its values' own colours.
    maps = np.array([[[0.55, 0.60], [0.62, 0.65]],
                     [[0.05, 0.30], [0.70, 0.95]]], np.float32)
    images = np.zeros((2, 32, 32, 3), np.float32)
    images[1, :16] = 1.0  # a white top half
    fig = figure.attention_figure(images, maps, display_size=96)
    for row in range(2):
        heat = _panel(fig, row, "heat")
        for i in range(2):
            for j in range(2):
                patch = _cell_corner(heat, 2, 2, i, j)
                expected = figure.colorize_uint8(maps[row, i, j])
                np.testing.assert_array_equal(patch, np.broadcast_to(expected, patch.shape),
                                              err_msg="row %d cell %d,%d" % (row, i, j))
        # The overlay keeps the image: 65 % image, 35 % heat colour.
        overlay = _panel(fig, row, "overlay")
        for i, j in ((0, 0), (1, 1)):
            patch = _cell_corner(overlay, 2, 2, i, j).astype(float)
            expected = (0.65 * images[row, 16 * i, 16 * j] * 255
                        + 0.35 * figure.colorize_uint8(maps[row, i, j]))
            np.testing.assert_allclose(patch, np.broadcast_to(expected, patch.shape),
                                       atol=1.01)
        # The input panel is the input, untouched (one colour per half here).
        picture = _panel(fig, row, "image")
        for y in (5, 90):
            np.testing.assert_array_equal(picture[y, 5:90],
                                          np.full((85, 3), images[row, y // 3, 0] * 255))
    assert "spread 0.900" in " ".join(fig.texts)


def test_colour_bar_and_values_are_drawn():
    amap = np.linspace(0.0, 1.0, 49, dtype=np.float32).reshape(7, 7)
    fig = figure.attention_figure(np.zeros((1, 32, 32, 3), np.float32), amap[None])
    # The bar runs from colour(1) at the top to colour(0) at the bottom.
    bar = _panel(fig, 0, "bar")
    size = bar.shape[0]
    for y in (10, size // 4, size // 2, size - 10):
        np.testing.assert_array_equal(
            bar[y, 2:-2], np.broadcast_to(figure.colorize_uint8(1.0 - y / (size - 1.0)),
                                          bar[y, 2:-2].shape))
    for tick in ("0", "0.25", "0.5", "0.75", "1"):
        assert tick in fig.texts
    # The map's 49 values are written (3 decimals, or fewer where they would not fit)
    # and there is ink in the middle of each cell.
    values = fig.texts[fig.texts.index(figure.COLUMN_CAPTIONS[-1]) + 2:][:49]
    assert len(values) == 49
    np.testing.assert_allclose([float(v) for v in values], amap.ravel(), atol=0.006)
    heat = _panel(fig, 0, "heat")
    cell = heat.shape[0] // 7
    middle = heat[3 * cell + cell // 2 - 3:3 * cell + cell // 2 + 3, 3 * cell + 4:4 * cell - 4]
    assert (np.abs(middle.astype(int) - figure.colorize_uint8(amap[3, 3])).max(-1) > 60).any()
    # The map's minimum and maximum are marked across the bar (black lines).
    left, top, right, bottom = fig.boxes[0]["bar"]
    assert (fig.pixels[top + 1, left - 3] < 40).all()      # max = 1 at the top
    assert (fig.pixels[bottom - 2, left - 3] < 40).all()   # min = 0 at the bottom
    assert (fig.pixels[top + size // 2, left - 3] == 255).all()  # nothing between
    # A larger map has no numbers written in, but the log line keeps the range.
    big = figure.attention_figure(np.zeros((1, 32, 32, 3), np.float32),
                                  np.full((1, 8, 8), 0.6, np.float32))
    assert not any(t.startswith("0.6") for t in big.texts)
    assert "[" not in figure.describe_map(np.full((8, 8), 0.7)).line


def test_tensorboard_image_is_the_same_figure(graph):
    rng = np.random.RandomState(1)
    images = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
    maps = rng.uniform(size=(2, 2, 2, 1)).astype(np.float32)
    summary = summaries.attention_summary(images, maps, titles=["a.png", "b.png"])
    value, = summary.value
    assert value.tag == "validation/attention_map"
    decoded = np.asarray(Image.open(io.BytesIO(value.image.encoded_image_string)))
    expected = figure.attention_figure(images, maps, titles=["a.png", "b.png"]).pixels
    np.testing.assert_array_equal(decoded, expected)
    assert (value.image.height, value.image.width) == expected.shape[:2]


def test_describe_maps_sums_up_a_batch():
    maps = np.full((3, 2, 2, 1), 0.5, np.float32)
    assert figure.describe_maps(maps).endswith(
        "all flat (spread < 0.01): the spatial gate has not learned a preference yet")
    maps[1, 0, 0] = 0.9
    assert figure.describe_maps(maps) == ("3 maps 2x2: values 0.500 to 0.900, largest "
                                          "spread 0.400; 2 of 3 flat (spread < 0.01)")


@pytest.mark.parametrize("maps, message", [
    (np.full((1, 2, 2), 1.5), r"maps must lie in \[0, 1\] .*sigmoid.*1\.5"),
    (np.full((1, 2, 2), np.nan), "maps holds NaN or infinite values"),
    (np.full((2, 2, 2), 0.5), "one map per image: 1 images, 2 maps"),
    (np.full((1, 2, 2, 3), 0.5), r"maps must have shape \[N, h, w\]"),
])
def test_bad_maps_are_value_errors(maps, message):
    with pytest.raises(ValueError, match=message):
        figure.attention_figure(np.zeros((1, 8, 8, 3)), maps)


def test_bad_images_titles_and_size_are_value_errors():
    maps = np.full((1, 2, 2), 0.5)
    with pytest.raises(ValueError, match=r"images must have shape \[N, H, W, 3\]"):
        figure.attention_figure(np.zeros((1, 8, 8)), maps)
    with pytest.raises(ValueError, match="one title per image: 1 images, 2 titles"):
        figure.attention_figure(np.zeros((1, 8, 8, 3)), maps, titles=["a", "b"])
    with pytest.raises(ValueError, match="display_size must be >= 32, got 8"):
        figure.attention_figure(np.zeros((1, 8, 8, 3)), maps, display_size=8)


def test_script_regenerates_the_readme_figure(tmp_path):
    committed = os.path.join(ROOT, "docs", "attention-map-example.png")
    out = str(tmp_path / "fig.png")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "docs",
                                                        "make_attention_figure.py"), out],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    np.testing.assert_array_equal(np.asarray(Image.open(out)),
                                  np.asarray(Image.open(committed)))
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        assert "docs/attention-map-example.png" in f.read()
