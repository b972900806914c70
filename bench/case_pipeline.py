"""Case ``pipeline``: vgg_patch.data's tf.data pipeline, images/s.

Two image sets, written once under the cache folder with Pillow:

- ``photo-sized``: JPEGs of 500x375 (ImageNet's typical size), smooth colour
  fields plus noise, so decoding costs what a photograph costs;
- ``demo digits``: the training command's built-in demo data (scikit-learn's
  digits as small PNGs), via ``vgg_patch.data.write_demo_digits``.

Each is read by ``ImagePipeline(224, batch 16, training=True)`` (decode, resize
the short side to 256, random 224 crop, flip; parallel map, prefetch) in a
Session, timed over whole passes after a warm-up pass. The report sets these
figures against the training step's images/s from the ``train`` case: a
pipeline much faster than the step cannot be the bottleneck (both share the
same cores, so the pipeline's CPU time also comes off the step's).
"""
import logging
import os
import time

import numpy as np

import harness

_LOG = logging.getLogger("bench")


def _photo_set(root, count=128):
    """Writes ``count`` photo-sized JPEGs in two class folders (reused)."""
    from PIL import Image  # pylint: disable=import-outside-toplevel
    done = os.path.join(root, ".complete-%d" % count)
    if os.path.exists(done):
        return root
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:375, 0:500].astype(np.float32)
    for i in range(count):
        cls = os.path.join(root, "class%d" % (i % 2))
        os.makedirs(cls, exist_ok=True)
        a, b, c = rng.random(3) * 0.05
        base = np.stack([np.sin(xx * a + yy * b), np.cos(yy * c + xx * a),
                         np.sin((xx + yy) * b)], -1) * 80 + 128
        img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(cls, "img%04d.jpg" % i), quality=90)
    open(done, "w", encoding="ascii").close()
    return root


def _measure(data_dir, passes):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from vgg_patch import data as data_lib  # pylint: disable=import-outside-toplevel
    paths, labels, _ = data_lib.scan_image_folder(data_dir)
    graph = tf.Graph()
    with graph.as_default():
        pipe = data_lib.ImagePipeline(224, 16, training=True)
    sess = tf.compat.v1.Session(graph=graph)

    def one_pass():
        pipe.initialize(sess, paths, labels)
        n = 0
        while True:
            try:
                n += len(sess.run(pipe.labels_out))
            except tf.errors.OutOfRangeError:
                return n

    one_pass()  # warm-up
    t0 = time.perf_counter()
    images = sum(one_pass() for _ in range(passes))
    dt = time.perf_counter() - t0
    sess.close()
    return images / dt, len(paths)


def run(args):
    """Measures both image sets; returns the rows."""
    root = os.path.join(os.environ.get("BENCH_CACHE", "/tmp/slim_attention_bench"),
                        "images")
    from vgg_patch import data as data_lib  # pylint: disable=import-outside-toplevel
    sets = [("photo-sized JPEG (500x375)", _photo_set(os.path.join(root, "photos"))),
            ("demo digits PNG", data_lib.write_demo_digits(os.path.join(root, "digits")))]
    rows = []
    for what, folder in sets:
        passes = 1 if args.quick else 3
        if "digits" in what:
            passes = 1
        img_s, count = _measure(folder, passes)
        rows.append({"what": "ImagePipeline(224, batch 16, training): " + what,
                     "img_s": img_s, "note": "%d images x %d passes" % (count, passes)})
        _LOG.info("%s", rows[-1])
        harness.emit_row(rows[-1])
    return {"rows": rows, "peak_rss_mib": harness.mib(harness.peak_rss_bytes())}
