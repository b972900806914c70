"""TensorBoard summaries written from Python: validation scalars, attention maps."""
from vgg_patch import figure as figure_lib


def attention_summary(images, maps, titles=None, tag="validation/attention_map"):
    """The TensorBoard image of attention maps: :func:`vgg_patch.figure.attention_figure`.

    The same picture as ``vgg19-cbam-predict --attention-map`` (fixed 0-1 scale,
    colour bar, values, flat maps labelled), one row per image, as one PNG.

    Args:
      images: float [N, H, W, 3] in [0, 1].
      maps: float [N, h, w, 1], CBAM's spatial map.
      titles: N strings shown above the rows, or None.
      tag: the summary's tag.

    Returns:
      A ``tf.compat.v1.Summary`` holding one image.
    """
    import tensorflow as tf
    pixels = figure_lib.attention_figure(images, maps, titles=titles).pixels
    image = tf.compat.v1.Summary.Image(
        height=pixels.shape[0], width=pixels.shape[1], colorspace=3,
        encoded_image_string=figure_lib.encode_png(pixels))
    return tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag=tag, image=image)])


def validation_summary(accuracy, cross_entropy):
    """The ``validation/accuracy`` and ``validation/cross_entropy`` scalars."""
    import tensorflow as tf
    return tf.compat.v1.Summary(value=[
        tf.compat.v1.Summary.Value(tag="validation/accuracy", simple_value=accuracy),
        tf.compat.v1.Summary.Value(tag="validation/cross_entropy",
                                   simple_value=cross_entropy)])
