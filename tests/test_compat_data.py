"""slim.data TFExample decoders on current TensorFlow, checked against PIL.

``tfexample_decoder.Image`` picks PNG/JPEG/raw with ``control_flow_ops.case``
and ``cond`` (moved in TF 2.14); the images here are encoded by PIL and the
decoded pixels compared with PIL's own decoding.
"""
import io

import numpy as np
import tensorflow as tf
from PIL import Image

import slim_attention as slim

tf1 = tf.compat.v1
decoder_lib = slim.data.tfexample_decoder


def _image(seed, size=(6, 5)):
    rng = np.random.RandomState(seed)
    # Smooth content, so JPEG round-off stays small.
    base = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[0], size[1], 3)
    return np.clip(base + rng.randint(-10, 10, base.shape), 0, 255).astype(np.uint8)


def _encode(array, fmt):
    buffer = io.BytesIO()
    # JPEG without chroma subsampling, so the two decoders need no upsampling.
    options = dict(quality=95, subsampling=0) if fmt == "JPEG" else {}
    Image.fromarray(array).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _example(encoded, fmt, labels):
    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encoded])),
        "image/format": tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[fmt.encode()])),
        "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(
            value=labels)),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _decoder():
    keys_to_features = {
        "image/encoded": tf1.FixedLenFeature((), tf.string, default_value=""),
        "image/format": tf1.FixedLenFeature((), tf.string, default_value="png"),
        "image/class/label": tf1.FixedLenFeature([2], tf.int64),
    }
    items_to_handlers = {
        "image": decoder_lib.Image(shape=[6, 5, 3], channels=3,
                                   dct_method="INTEGER_ACCURATE"),
        "label": decoder_lib.Tensor("image/class/label"),
    }
    return decoder_lib.TFExampleDecoder(keys_to_features, items_to_handlers)


def test_decodes_png_and_jpeg_images_and_int64_labels(graph):
    png_array, jpeg_array = _image(0), _image(1)
    png = _example(_encode(png_array, "PNG"), "png", [3, 7])
    jpeg_bytes = _encode(jpeg_array, "JPEG")
    jpeg = _example(jpeg_bytes, "jpeg", [1, 2 ** 40])  # int64 beyond int32
    serialized = tf1.placeholder(tf.string, [])
    image, label = _decoder().decode(serialized, ["image", "label"])
    with tf1.Session() as sess:
        png_image, png_label = sess.run([image, label],
                                        {serialized: png.SerializeToString()})
        jpeg_image, jpeg_label = sess.run([image, label],
                                          {serialized: jpeg.SerializeToString()})
    np.testing.assert_array_equal(png_image, png_array)  # PNG is lossless
    np.testing.assert_array_equal(png_label, [3, 7])
    assert png_label.dtype == np.int64
    np.testing.assert_array_equal(jpeg_label, [1, 2 ** 40])
    pil_decoded = np.asarray(Image.open(io.BytesIO(jpeg_bytes)).convert("RGB"))
    # Two JPEG decoders (TF, PIL) with the accurate integer IDCT: round-off only.
    assert np.abs(jpeg_image.astype(int) - pil_decoded.astype(int)).max() <= 2


def test_dataset_data_provider_reads_a_tfrecord_file(graph, tmp_path):
    """The TF1 slim input pipeline: Dataset + DatasetDataProvider (parallel
    reader and queue runners) over a TFRecord file written here."""
    arrays = [_image(seed) for seed in range(3)]
    path = str(tmp_path / "train.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for index, array in enumerate(arrays):
            writer.write(_example(_encode(array, "PNG"), "png",
                                  [index, 10 * index]).SerializeToString())
    dataset = slim.dataset.Dataset(
        data_sources=path, reader=tf1.TFRecordReader, decoder=_decoder(),
        num_samples=3, items_to_descriptions={"image": "RGB", "label": "two ints"})
    provider = slim.dataset_data_provider.DatasetDataProvider(
        dataset, num_readers=1, shuffle=False, num_epochs=1)
    image, label = provider.get(["image", "label"])
    seen = []
    with tf1.Session() as sess:
        sess.run([tf1.global_variables_initializer(), tf1.local_variables_initializer()])
        coord = tf1.train.Coordinator()
        threads = tf1.train.start_queue_runners(sess, coord=coord)
        try:
            for _ in range(3):
                seen.append(sess.run([image, label]))
        finally:
            coord.request_stop()
            coord.join(threads)
    for index, (got_image, got_label) in enumerate(seen):
        np.testing.assert_array_equal(got_image, arrays[index])
        np.testing.assert_array_equal(got_label, [index, 10 * index])
