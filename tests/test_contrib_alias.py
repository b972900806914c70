"""install_contrib_alias(): TF1 code using tf.contrib.slim / tf.contrib.layers runs."""
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import tensorflow as tf

import slim_attention

# A TF1 script as it was written, except for the usual compat.v1 import, the
# TF1-behaviour switch and the opt-in call. It prints numbers the test checks
# against NumPy and the initialisers' documented formulas.
TF1_SNIPPET = textwrap.dedent("""
    import numpy as np
    import tensorflow.compat.v1 as tf
    import slim_attention

    try:
        tf.contrib
    except AttributeError:
        print("BEFORE: no tf.contrib")
    slim_attention.install_contrib_alias()
    tf.disable_v2_behavior()

    import tensorflow.contrib.slim as slim
    from tensorflow.contrib.slim.nets import vgg

    print("SAME_SLIM:", slim is tf.contrib.slim is slim_attention)
    print("VGG:", vgg.vgg_19.__module__)

    x = tf.placeholder(tf.float32, [None, 256])
    y = tf.placeholder(tf.float32, [None, 1])
    with slim.arg_scope([slim.fully_connected],
                        weights_regularizer=tf.contrib.layers.l2_regularizer(0.01)):
        hidden = slim.fully_connected(
            x, 256, scope="hidden",
            weights_initializer=tf.contrib.layers.variance_scaling_initializer())
        out = slim.fully_connected(
            hidden, 1, activation_fn=None, scope="out",
            weights_initializer=tf.contrib.layers.xavier_initializer())
    data_loss = tf.losses.mean_squared_error(y, out)
    total_loss = tf.losses.get_total_loss()
    train_op = slim.learning.create_train_op(total_loss,
                                             tf.train.GradientDescentOptimizer(0.01))
    rng = np.random.RandomState(0)
    features = (rng.rand(32, 256) - 0.5).astype(np.float32)
    targets = features[:, :1] * 2.0
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        w_hidden, w_out = sess.run(["hidden/weights:0", "out/weights:0"])
        reg = sess.run(tf.add_n(tf.losses.get_regularization_losses()))
        first = sess.run(total_loss, {x: features, y: targets})
        for _ in range(10):
            sess.run(train_op, {x: features, y: targets})
        last = sess.run(total_loss, {x: features, y: targets})
    print("HIDDEN_STD:", w_hidden.std())
    print("OUT_MAXABS:", np.abs(w_out).max())
    print("REG:", reg, 0.01 * 0.5 * ((w_hidden ** 2).sum() + (w_out ** 2).sum()))
    print("LOSS:", first, last)
""")


def test_tf1_snippet_runs_unmodified(tmp_path):
    script = tmp_path / "tf1_snippet.py"
    script.write_text(TF1_SNIPPET)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, str(script)], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert out["BEFORE"] == "no tf.contrib"  # opt-in: import alone adds nothing
    assert out["SAME_SLIM"] == "True"
    assert out["VGG"] == "tf_slim.nets.vgg"
    # variance_scaling_initializer(factor=2.0, FAN_IN, truncated normal): var = 2 / fan_in.
    assert abs(float(out["HIDDEN_STD"]) - np.sqrt(2.0 / 256)) < 0.05 * np.sqrt(2.0 / 256)
    # xavier_initializer (uniform): |w| <= sqrt(6 / (fan_in + fan_out)).
    assert float(out["OUT_MAXABS"]) <= np.sqrt(6.0 / (256 + 1))
    reg, reference = map(float, out["REG"].split())
    assert abs(reg - reference) <= 1e-5 * reference  # l2_regularizer: scale * sum(w^2) / 2
    first, last = map(float, out["LOSS"].split())
    assert last < first


def test_install_is_idempotent_and_aliases_tf_slim_objects():
    import tf_slim

    contrib = slim_attention.install_contrib_alias()
    entries = {name: module for name, module in sys.modules.items()
               if name.startswith("tensorflow.contrib")}
    assert slim_attention.install_contrib_alias() is contrib
    assert {name: module for name, module in sys.modules.items()
            if name.startswith("tensorflow.contrib")} == entries
    assert sorted(entries) == ["tensorflow.contrib", "tensorflow.contrib.layers",
                               "tensorflow.contrib.slim", "tensorflow.contrib.slim.nets"]
    assert tf.contrib is contrib and tf.compat.v1.contrib is contrib
    assert contrib.slim.conv2d is tf_slim.conv2d
    assert contrib.layers.xavier_initializer is tf_slim.xavier_initializer
    assert contrib.layers.l2_regularizer is tf_slim.l2_regularizer
    assert (contrib.layers.variance_scaling_initializer
            is tf_slim.variance_scaling_initializer)


def test_install_never_replaces_an_existing_contrib(monkeypatch):
    """A pre-existing tensorflow.contrib (module and attribute) is kept; only
    its missing names are added."""
    existing = types.ModuleType("tensorflow.contrib")
    existing.layers = sentinel_layers = types.ModuleType("user_layers")
    monkeypatch.setitem(sys.modules, "tensorflow.contrib", existing)
    for name in ("tensorflow.contrib.slim", "tensorflow.contrib.slim.nets",
                 "tensorflow.contrib.layers"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(tf, "contrib", existing, raising=False)
    monkeypatch.setattr(tf.compat.v1, "contrib", existing, raising=False)

    assert slim_attention.install_contrib_alias() is existing
    assert tf.contrib is existing and tf.compat.v1.contrib is existing
    assert existing.layers is sentinel_layers  # kept, not replaced
    assert existing.slim is slim_attention  # the missing name was added
