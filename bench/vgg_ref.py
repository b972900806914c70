"""VGG19 references for the benchmarks (bench-only code, not part of the library).

- :func:`write_synthetic_npy` writes a full-size (548 MB) vgg19.npy with exactly
  tensorflow-vgg's layout, ``{'conv1_1': [W, b], ..., 'fc8': [W, b]}``.
- :func:`keras_vgg19` builds ``tf.keras.applications.VGG19(weights=None)`` and
  gives it the npy's weights (Keras' Flatten is NHWC, as tensorflow-vgg's
  reshape is, so fc6's matrix is used unchanged).
- :class:`ConstantVgg19` is tensorflow-vgg's approach: every weight a
  ``tf.constant`` in the GraphDef (what issue 6 compares the build against).
- :func:`graph_vgg19` is a minimal tf.compat.v1 VGG19 with variables, in float32
  or bfloat16; it is the bench-only bf16 variant, and a floor to compare
  vgg_patch's own graph against when looking for overhead.
"""
import hashlib
import logging
import os

import numpy as np

from vgg_patch import layout

_LOG = logging.getLogger(__name__)

# The layout (table, shapes, parameter count, synthetic weights) is vgg_patch's.
VGG_MEAN = tuple(layout.VGG_MEAN)
CONV_LAYERS = layout.CONV_LAYERS
FC_LAYERS = layout.FC_LAYERS  # names, as vgg_patch.FC_LAYERS
KERAS_NAMES = layout.KERAS_NAMES
TOTAL_PARAMS = layout.PARAMS
synthetic_weights = layout.synthetic_weights


def layer_shapes():
    """Returns [(name, weight_shape, bias_shape)] in tensorflow-vgg's order."""
    return [(name, wshape, bshape) for name, (wshape, bshape) in layout.LAYER_SHAPES.items()]


def default_npy_path():
    """Where the synthetic file is cached (outside the repository)."""
    root = os.environ.get("BENCH_CACHE", "/tmp/slim_attention_bench")
    return os.path.join(root, "vgg19_synthetic.npy")


def write_synthetic_npy(path=None, seed=0, force=False):
    """Writes (or reuses) the full-size synthetic vgg19.npy.

    The file is :func:`vgg_patch.layout.write_synthetic_npy`'s: a pickled
    ``{name: [W, b]}`` dict in a ``.npy``, exactly the original file's layout
    (143,667,240 parameters), that ``np.load(allow_pickle=True)`` reads. An
    existing file is reused when its stamp (seed, size and writer) matches,
    so repeated benchmark runs do not rewrite it.

    Returns:
      The path written.
    """
    path = path or default_npy_path()
    stamp = path + ".stamp"
    want = "seed=%d params=%d writer=vgg_patch.layout" % (seed, TOTAL_PARAMS)
    if not force and os.path.exists(path) and os.path.exists(stamp):
        with open(stamp, encoding="ascii") as f:
            if f.read().strip() == want:
                return path
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    layout.write_synthetic_npy(path, seed)
    with open(stamp, "w", encoding="ascii") as f:
        f.write(want)
    _LOG.info("wrote %s (%.0f MB)", path, os.path.getsize(path) / 1e6)
    return path


def load_npy(path):
    """tensorflow-vgg's own loader (trusted file: it is ours)."""
    return np.load(path, encoding="latin1", allow_pickle=True).item()


def digest(arrays):
    """A short hash of some arrays, to check two models got the same weights."""
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]


# --------------------------------------------------------------------------- Keras
def keras_vgg19(weights=None, logits=True):
    """``tf.keras.applications.VGG19(weights=None)`` given the npy's weights.

    Args:
      weights: dict name -> [W, b] (tensorflow-vgg layout), or None for Keras'
        own random initialisation.
      logits: build with ``classifier_activation=None`` so the output is fc8
        (logits), as compared against vgg_patch's ``fc8``.

    Returns:
      The Keras model.
    """
    import tensorflow as tf
    model = tf.keras.applications.VGG19(
        weights=None, classifier_activation=None if logits else "softmax")
    if weights is not None:
        for name, keras_name in KERAS_NAMES.items():
            model.get_layer(keras_name).set_weights(list(weights[name]))
    return model


def preprocess_np(rgb):
    """tensorflow-vgg's preprocessing in NumPy: x255, RGB->BGR, minus the mean."""
    bgr = rgb[..., ::-1] * 255.0
    return (bgr - np.asarray(VGG_MEAN, np.float32)).astype(np.float32)


# --------------------------------------------------------------------------- TF1 graphs
def _preprocess(rgb):
    import tensorflow as tf
    scaled = rgb * 255.0
    red, green, blue = tf.split(scaled, 3, axis=3)
    return tf.concat([blue - VGG_MEAN[0], green - VGG_MEAN[1],
                      red - VGG_MEAN[2]], axis=3)


def _body(x, get_w, get_b, include_top=True, dropout_keep=None):
    """VGG19's layer list; ``get_w/get_b(name)`` return the weight tensors."""
    import tensorflow as tf
    end = {}
    for name, _, _ in CONV_LAYERS:
        x = tf.nn.relu(tf.nn.bias_add(
            tf.nn.conv2d(x, get_w(name), [1, 1, 1, 1], padding="SAME"),
            get_b(name)), name=name)
        end[name] = x
        if name in ("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4"):
            pool = "pool" + name[4]
            x = tf.nn.max_pool2d(x, 2, 2, padding="SAME", name=pool)
            end[pool] = x
    if not include_top:
        return x, end
    x = tf.reshape(x, [-1, layout.LAYER_SHAPES["fc6"][0][0]])
    for name in FC_LAYERS:
        x = tf.nn.bias_add(tf.matmul(x, get_w(name)), get_b(name), name=name)
        end[name] = x
        if name != "fc8":
            x = tf.nn.relu(x)
            if dropout_keep is not None:
                x = tf.nn.dropout(x, rate=tf.cast(1.0 - dropout_keep, x.dtype))
    return x, end


class ConstantVgg19:
    """tensorflow-vgg's ``Vgg19``: the npy's weights as ``tf.constant`` ops.

    Faithful to tensorflow-vgg's approach (np.load of the whole dict, one
    constant per weight, conv/bias/relu, SAME max-pools, reshape + matmul fcs),
    written here so the build can be measured against vgg_patch's.
    """

    def __init__(self, vgg19_npy_path):
        self.data_dict = load_npy(vgg19_npy_path)

    def build(self, rgb):
        """Builds the graph; sets ``self.fc8`` and ``self.prob``."""
        import tensorflow as tf
        bgr = _preprocess(rgb)
        logits, _ = _body(
            bgr,
            lambda n: tf.constant(self.data_dict[n][0], name=n + "_filter"),
            lambda n: tf.constant(self.data_dict[n][1], name=n + "_biases"))
        self.fc8 = logits
        self.prob = tf.nn.softmax(logits, name="prob")
        self.data_dict = None
        return self.prob


def graph_vgg19(rgb, dtype="float32", include_top=True, dropout_keep=None,
                master_dtype=None):
    """A minimal tf.compat.v1 VGG19 with variables (call inside a Graph).

    Args:
      rgb: float32 [N, 224, 224, 3] tensor in [0, 1].
      dtype: compute dtype, 'float32' or 'bfloat16'.
      include_top: build fc6-fc8.
      dropout_keep: keep probability for fc6/fc7 dropout (training), or None.
      master_dtype: variable dtype; defaults to ``dtype``. 'float32' with
        dtype='bfloat16' gives mixed precision (float32 master weights, cast to
        bfloat16 at use), the usual setting for bf16 training.

    Returns:
      (output float32 tensor, dict name -> variable [W, b]).
    """
    import tensorflow as tf
    compute = tf.as_dtype(dtype)
    master = tf.as_dtype(master_dtype or dtype)
    variables = {}
    for name, wshape, bshape in layer_shapes():
        if not include_top and name.startswith("fc"):
            continue
        with tf.compat.v1.variable_scope(name):
            w = tf.compat.v1.get_variable(
                "weights", wshape, master,
                initializer=tf.compat.v1.initializers.zeros())
            b = tf.compat.v1.get_variable(
                "biases", bshape, master,
                initializer=tf.compat.v1.initializers.zeros())
        variables[name] = [w, b]

    def get(i):
        def fn(name):
            v = variables[name][i]
            return v if master == compute else tf.cast(v, compute)
        return fn

    x = tf.cast(_preprocess(rgb), compute)
    out, _ = _body(x, get(0), get(1), include_top, dropout_keep)
    return tf.cast(out, tf.float32), variables


def assign_weights(sess, variables, weights):
    """Loads NumPy weights into ``graph_vgg19``'s variables through feeds."""
    import tensorflow as tf
    for name, pair in variables.items():
        for var, value in zip(pair, weights[name]):
            ph = tf.compat.v1.placeholder(var.dtype.base_dtype, var.shape)
            sess.run(var.assign(ph), {ph: value.astype(
                var.dtype.base_dtype.as_numpy_dtype)})
