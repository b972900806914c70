"""slim.learning.train and slim.evaluation on current TensorFlow.

create_train_op with gradient clipping and gradient summaries reaches
``ops.IndexedSlices`` (moved); batch_norm reaches the moved tf-keras layers.
The evaluated metric is checked against NumPy using the checkpoint's weights.
"""
import numpy as np
import tensorflow as tf

import slim_attention as slim

tf1 = tf.compat.v1

STEPS = 15


def _data():
    rng = np.random.RandomState(0)
    x = rng.randn(32, 4).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 0.1 * rng.randn(32, 1)).astype(
        np.float32)
    return x, y


def _model(x, is_training):
    with slim.arg_scope([slim.fully_connected],
                        weights_regularizer=slim.l2_regularizer(1e-4)):
        net = slim.fully_connected(x, 8, normalizer_fn=slim.batch_norm,
                                   normalizer_params={"is_training": is_training},
                                   scope="fc1")
        return slim.fully_connected(net, 1, activation_fn=None, scope="out")


def _numpy_model(x, reader):
    """The model of _model in inference mode, from the checkpoint's arrays."""
    net = x @ reader("fc1/weights")
    net = (reader("fc1/BatchNorm/beta")
           + (net - reader("fc1/BatchNorm/moving_mean"))
           / np.sqrt(reader("fc1/BatchNorm/moving_variance") + 0.001))
    net = np.maximum(net, 0)
    return net @ reader("out/weights") + reader("out/biases")


def test_train_loss_falls_then_evaluation_matches_numpy(tmp_path):
    x, y = _data()
    train_dir = str(tmp_path / "train")
    losses = []

    def recording_train_step(sess, train_op, global_step, train_step_kwargs):
        total_loss, should_stop = slim.learning.train_step(
            sess, train_op, global_step, train_step_kwargs)
        losses.append(total_loss)
        return total_loss, should_stop

    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        predictions = _model(tf.constant(x), is_training=True)
        tf1.losses.mean_squared_error(tf.constant(y), predictions)
        total_loss = tf1.losses.get_total_loss()
        train_op = slim.learning.create_train_op(
            total_loss, tf1.train.GradientDescentOptimizer(0.05),
            clip_gradient_norm=5.0, summarize_gradients=True)
        # No Supervisor background threads: in TF2's default eager mode a new
        # thread is not inside this Graph (see the TF1-mode test below).
        final_loss = slim.learning.train(
            train_op, train_dir, train_step_fn=recording_train_step,
            number_of_steps=STEPS, log_every_n_steps=100, save_summaries_secs=0,
            save_interval_secs=0)
    assert len(losses) == STEPS
    assert final_loss == losses[-1]
    assert losses[-1] < 0.5 * losses[0]
    checkpoint = tf1.train.latest_checkpoint(train_dir)
    assert checkpoint.endswith("-%d" % STEPS)

    def reader(name):
        return tf1.train.load_variable(checkpoint, name)

    # Training ran the batch-norm updates (create_train_op adds UPDATE_OPS).
    assert np.abs(reader("fc1/BatchNorm/moving_mean")).max() > 0
    expected_mse = ((_numpy_model(x, reader) - y) ** 2).mean()

    eval_dir = str(tmp_path / "eval")
    with tf.Graph().as_default():
        predictions = _model(tf.constant(x), is_training=False)
        mse, mse_update = slim.metrics.streaming_mean_squared_error(predictions,
                                                                    tf.constant(y))
        tf1.train.get_or_create_global_step()
        once = slim.evaluation.evaluate_once(
            "", checkpoint, eval_dir, num_evals=1, eval_op=mse_update, final_op=mse)
        looped = slim.evaluation.evaluation_loop(
            "", train_dir, eval_dir, num_evals=1, eval_op=mse_update, final_op=mse,
            eval_interval_secs=0, max_number_of_evaluations=1)
    np.testing.assert_allclose(once, expected_mse, rtol=1e-4)
    np.testing.assert_allclose(looped, expected_mse, rtol=1e-4)


TF1_TRAIN_SCRIPT = """
import sys
import numpy as np
import tensorflow.compat.v1 as tf
import slim_attention as slim

tf.disable_eager_execution()  # TF1 behaviour for every thread, Supervisor's included
rng = np.random.RandomState(0)
x = rng.randn(16, 3).astype(np.float32)
y = x.sum(axis=1, keepdims=True)
pred = slim.fully_connected(tf.constant(x), 1, activation_fn=None)
loss = tf.losses.mean_squared_error(tf.constant(y), pred)
train_op = slim.learning.create_train_op(loss, tf.train.GradientDescentOptimizer(0.1))
losses = []

def step(sess, op, global_step, kwargs):
    result = slim.learning.train_step(sess, op, global_step, kwargs)
    losses.append(result[0])
    return result

slim.learning.train(train_op, sys.argv[1], train_step_fn=step, number_of_steps=5)
print("LOSSES:", " ".join("%.6f" % value for value in losses))
print("CHECKPOINT:", tf.train.latest_checkpoint(sys.argv[1]))
"""


def test_train_with_default_background_threads_in_tf1_mode(tmp_path):
    """With TF1 behaviour (as a migrated script has it) learning.train's default
    Supervisor threads (step counter, summaries, checkpoints) run too."""
    import os
    import subprocess
    import sys

    script = tmp_path / "train_tf1.py"
    script.write_text(TF1_TRAIN_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "logs")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    losses = [float(value) for value in out["LOSSES"].split()]
    assert len(losses) == 5 and losses[-1] < losses[0]
    assert out["CHECKPOINT"].endswith("model.ckpt-5")
