"""install_contrib_alias(): TF1 programs that use tf.contrib names run unmodified.

End to end, in processes of their own where the program is a script: the
table's contract itself is tested in test_contrib_alias.py.
"""
import importlib
import os
import subprocess
import sys
import textwrap

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
    try:
        import tensorflow.contrib.framework
    except ModuleNotFoundError:
        print("BEFORE_IMPORT: no tensorflow.contrib.framework")
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
    assert out["BEFORE_IMPORT"] == "no tensorflow.contrib.framework"
    assert out["SAME_SLIM"] == "True"
    assert out["VGG"] == "slim_attention.nets.vgg"  # tf-slim's VGG with attention_module
    # variance_scaling_initializer(factor=2.0, FAN_IN, truncated normal): var = 2 / fan_in.
    assert abs(float(out["HIDDEN_STD"]) - np.sqrt(2.0 / 256)) < 0.05 * np.sqrt(2.0 / 256)
    # xavier_initializer (uniform): |w| <= sqrt(6 / (fan_in + fan_out)).
    assert float(out["OUT_MAXABS"]) <= np.sqrt(6.0 / (256 + 1))
    reg, reference = map(float, out["REG"].split())
    assert abs(reg - reference) <= 1e-5 * reference  # l2_regularizer: scale * sum(w^2) / 2
    first, last = map(float, out["LOSS"].split())
    assert last < first


def test_module_level_contrib_name_like_nasnet(tmp_path, monkeypatch, graph):
    """research/slim's nasnet_utils reads tf.contrib.framework.arg_scope at import."""
    slim_attention.install_contrib_alias()
    (tmp_path / "nasnet_like.py").write_text(textwrap.dedent("""
        import tensorflow.compat.v1 as tf

        arg_scope = tf.contrib.framework.arg_scope
        slim = tf.contrib.slim

        @tf.contrib.framework.add_arg_scope
        def stem(inputs, num_outputs, stride=1, scope=None):
            return slim.conv2d(inputs, num_outputs, [3, 3], stride=stride, scope=scope)

        def build(images):
            with arg_scope([stem], stride=2):
                return stem(images, 4, scope="stem")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("nasnet_like")
    import tf_slim
    assert module.arg_scope is tf_slim.arg_scope
    net = module.build(tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3]))
    assert net.shape.as_list() == [1, 4, 4, 4]  # stride 2 from the arg_scope


def test_tf1_program_using_contrib_names(tmp_path):
    """tests/tf1_programs/contrib_names: train writes a checkpoint with
    tf.contrib.training.train, eval restores it and reports accuracy."""
    program = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "tf1_programs", "contrib_names")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    train_dir = str(tmp_path / "train")

    def run(script):
        result = subprocess.run(
            [sys.executable, os.path.join(program, script), "--train_dir", train_dir],
            capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        return dict(line.split(": ", 1) for line in result.stdout.splitlines()
                    if ": " in line)

    train = run("train.py")
    assert int(train["STEPS"]) == 60
    assert float(train["FINAL_LOSS"]) < 0.5 * float(train["FIRST_LOSS"])
    assert train["CHECKPOINT"] == os.path.join(train_dir, "model.ckpt-60")
    assert os.path.exists(train["CHECKPOINT"] + ".index")

    evaluation = run("eval.py")
    restored, count = evaluation["RESTORED"].split()
    assert restored == "True" and int(count) == 7  # conv, batch norm (3), fc (2), temperature
    accuracy = float(evaluation["ACCURACY"])
    assert accuracy == float(evaluation["NUMPY_ACCURACY"])
    assert accuracy == float(evaluation["EVALUATE_ONCE_ACCURACY"])
    assert accuracy >= 0.9  # the easy task, held-out data; chance is 0.5
