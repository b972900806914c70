"""vgg_patch.training.optimization: the learning-rate schedule and the trained variables."""
import math

import numpy as np
import pytest
import tensorflow as tf

from vgg_patch.training import optimization


def _numpy_lr(step, base, total, schedule, warmup):
    if warmup and step < warmup:
        return base * (step + 1.0) / warmup
    if schedule == "constant":
        return base
    if schedule == "step":
        return base * (1.0 if step < 0.5 * total else 0.1 if step < 0.75 * total else 0.01)
    progress = min(1.0, max(0.0, (step - warmup) / max(1.0, total - warmup)))
    return 0.5 * base * (1.0 + math.cos(math.pi * progress))


@pytest.mark.parametrize("schedule,warmup", [("cosine", 0), ("cosine", 10), ("step", 0),
                                             ("step", 5), ("constant", 0)])
def test_learning_rate_schedule_matches_numpy(graph, schedule, warmup):
    step = tf.compat.v1.placeholder(tf.int64, [])
    lr = optimization.learning_rate_schedule(step, 0.1, 100, schedule, warmup)
    with tf.compat.v1.Session() as sess:
        for s in (0, 1, 4, 9, 10, 30, 49, 50, 74, 75, 99, 100, 120):
            np.testing.assert_allclose(sess.run(lr, {step: s}),
                                       _numpy_lr(s, 0.1, 100, schedule, warmup),
                                       rtol=1e-5, atol=1e-8, err_msg="step %d" % s)


def test_learning_rate_schedule_rejects_unknown(graph):
    with pytest.raises(ValueError, match="schedule must be 'cosine', 'step' or "
                                         "'constant', got 'linear'"):
        optimization.learning_rate_schedule(tf.constant(0, tf.int64), 0.1, 10, "linear", 0)


def test_select_trainable_by_prefix(graph):
    names = ["conv1_1/w", "conv5_4/w", "cbam_0/ChannelAttention/fc1/weights", "fc6/w",
             "fc8/w"]
    variables = [tf.compat.v1.get_variable(n, [1]) for n in names]
    pick = optimization.select_trainable(variables, ["fc", "cbam"])
    assert [v.op.name for v in pick] == names[2:]
    assert optimization.select_trainable(variables, []) == variables
    with pytest.raises(ValueError, match="'conv9' matches no trainable variable; scopes "
                                         "are cbam_0, conv1_1, conv5_4, fc6, fc8"):
        optimization.select_trainable(variables, ["conv9"])
