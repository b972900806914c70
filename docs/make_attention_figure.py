"""Draws docs/attention-map-example.png, the README's attention-map example.

    python docs/make_attention_figure.py [OUT.png]

No TensorFlow and no training here: the maps are numbers measured once with
``vgg19-cbam-predict --attention-map`` (which logs every value of a small map)
on networks trained as described below; this script redraws them with
:func:`vgg_patch.figure.attention_figure`, the drawing predict and the
trainer's TensorBoard image use, so the README's picture stays what the
current code draws (tests/test_figure.py checks that it does).

The images: scikit-learn's 8x8 digit number INDEX, scaled to 28x28 and put in
one quadrant of a black 64x64 canvas (quadrant and offset drawn with
``RandomState(0)``, in index order, over all 1,797 digits), so that the place
worth attending differs from image to image. They are validation images of
the runs (never trained on), shown as stored; the network saw them after the
pipeline's resize and central crop, nearly the same picture.

The first two rows are measured, on networks trained with ``vgg19-cbam-train``
on those 1,797 canvases at ``--image-size 64`` (pool5, hence the map, is 2x2:
one cell per quadrant):

* "demo recipe, 3 epochs": from scratch with the demo's settings (Adam 1e-4,
  cosine decay, no flips, no weight decay); validation accuracy 0.159 (the
  quadrant task is harder than the demo's centred digits). Every one of the
  359 validation maps is flat: spread 1e-6 to 1.5e-6, all values 0.499582.
* "gate trained 1 epoch at 1e-2": that network's export, then 1 epoch training
  only CBAM (``--trainable-scopes cbam``, Adam, constant 1e-2). The gate moved
  to about 0.40 and learned a fixed positional bias (top-right highest,
  bottom-left lowest on every image; its highest cell is the digit's quadrant
  on 25 % of the validation images, chance), spread 0.011 to 0.019: just above
  the flat threshold, and it draws as the near-uniform colour it is.

The third row is NOT from a network: a constructed 7x7 map (the size pool5
has at 224 px) with a clear peak over the digit, to show how a map with a
real preference draws. It is labelled so in the figure.
"""
import os
import sys

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from vgg_patch import figure  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, "attention-map-example.png")

# (digit index, title, map as logged by vgg19-cbam-predict, or None: constructed)
ROWS = [
    (36, "demo recipe, 3 epochs",
     [[0.4995822, 0.49958161], [0.49958259, 0.49958268]]),
    (36, "gate trained 1 epoch at 1e-2",
     [[0.40325, 0.40622], [0.39395, 0.4002]]),
    (536, "CONSTRUCTED map, not from a network", None),
]


def constructed_map(quadrant, cells=7):
    """A 7x7 sigmoid map peaking over the quadrant's centre (not measured)."""
    centre = (np.array(quadrant) * 32.0 + 2.0 + 14.0) / 64.0 * cells - 0.5
    yy, xx = np.mgrid[:cells, :cells]
    distance2 = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2
    logits = 3.0 * np.exp(-distance2 / 4.0) - 1.5
    return np.round(1.0 / (1.0 + np.exp(-logits)), 3)


def quadrant_digit(index):
    """The 64x64 canvas of digit ``index`` and its quadrant ``(row, column)``."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    rng = np.random.RandomState(0)
    for i, pixels in enumerate(digits.images[:index + 1]):
        qy, qx = rng.randint(2, size=2)
        y, x = 32 * qy + rng.randint(0, 5), 32 * qx + rng.randint(0, 5)
    small = np.clip(pixels * (255.0 / 16.0), 0, 255).astype(np.uint8)
    digit = np.asarray(Image.fromarray(small).resize((28, 28), Image.BILINEAR))
    canvas = np.zeros((64, 64), np.uint8)
    canvas[y:y + 28, x:x + 28] = digit
    return canvas, (int(qy), int(qx))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out = argv[0] if argv else DEFAULT_OUT
    images, maps, titles = [], [], []
    for index, title, values in ROWS:
        canvas, (qy, qx) = quadrant_digit(index)
        images.append(np.repeat(canvas[..., None], 3, axis=-1) / 255.0)
        maps.append(values if values is not None else constructed_map((qy, qx)))
        titles.append("digit %d (quadrant %s), %s" % (
            index, ("top", "bottom")[qy] + "-" + ("left", "right")[qx], title))
    # One figure per map size (the measured 2x2 ones, the constructed 7x7), stacked.
    parts = [figure.attention_figure(np.array(images[:2], np.float32),
                                     np.array(maps[:2], np.float32), titles=titles[:2]),
             figure.attention_figure(np.array(images[2:], np.float32),
                                     np.array(maps[2:], np.float32), titles=titles[2:])]
    pixels = np.concatenate([p.pixels for p in parts], axis=0)
    with open(out, "wb") as f:
        f.write(figure.encode_png(pixels))
    print(out)


if __name__ == "__main__":
    main()
