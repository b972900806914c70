"""vgg_patch.training.graph: the training graph, its NaN guard, and the default recipe
from scratch (bench/from_scratch.py's measure, a few steps at 32 px)."""
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from vgg_patch.cli import train as train_cli
from vgg_patch.training import config, optimization
from vgg_patch.training import graph as graph_lib


def _graph_of_defaults(tmp_path, *argv, num_classes=2):
    """build_graph with the options ``--data-dir DIR *argv`` resolve to."""
    args = config.resolve_config(train_cli.build_parser().parse_args(
        ["--data-dir", str(tmp_path)] + list(argv)))
    return graph_lib.build_graph(args, num_classes, 5, 50)


def test_a_nan_step_changes_no_saved_variable(graph, tmp_path):
    g = _graph_of_defaults(tmp_path, "--image-size", "32", "--batch-size", "2")
    names = [v.op.name for v in g.saved_variables]
    stats = [n for n in names if n.endswith(("moving_mean", "moving_variance"))]
    assert stats and any(n.endswith("/Adam") for n in names), names
    assert "global_step" in names
    # The network's variables are slim's model variables: the same list the
    # trainer used to select by name (everything but the loop state and the
    # optimizer's variables), the whole of the Vgg19's var_dict.
    optimizer_or_loop = ("train_state/", "global_step", "beta1_power", "beta2_power")
    assert g.model_variables == [v for v in g.saved_variables
                                 if not v.op.name.startswith(optimizer_or_loop)
                                 and not v.op.name.endswith(("/Adam", "/Adam_1"))]
    assert set(g.model_variables) == set(g.network.vgg.var_dict.values())
    images = np.random.RandomState(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    feed = {g.images: images, g.labels: np.array([0, 1]), g.train_mode: True}
    with tf.compat.v1.Session() as sess:
        sess.run(g.init)
        sess.run(g.copy_statistics)
        first = dict(zip(names, sess.run(g.saved_variables)))
        assert optimization.run_step(sess, g, [g.train_op, g.loss], feed) is not None
        before = dict(zip(names, sess.run(g.saved_variables)))
        for name in stats:  # a good step moves the statistics...
            assert not np.array_equal(before[name], first[name]), name
        # NaN logits weights: NaN loss and gradients, while the batch-norm
        # statistics (before fc8) still move and must be put back. (NaN put
        # earlier is not reliable: TF 2.16's oneDNN ReLU maps NaN to 0.)
        fc8 = [v for v in g.saved_variables if v.op.name == "fc8/fc8_weights"][0]
        good_fc8 = sess.run(fc8)
        sess.run(fc8.assign(tf.fill(tf.shape(fc8), np.float32(np.nan))))
        before = dict(zip(names, sess.run(g.saved_variables)))
        assert optimization.run_step(sess, g, [g.train_op, g.loss], feed) is None
        after = dict(zip(names, sess.run(g.saved_variables)))
        for name in names:  # ...a failing one changes nothing at all
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)
        sess.run(fc8.assign(good_fc8))
        assert sess.run(g.weights_finite)
        # The check before a save covers every saved variable, statistics included.
        stat = [v for v in g.saved_variables if v.op.name == stats[0]][0]
        sess.run(stat.assign(tf.fill(tf.shape(stat), np.float32(np.inf))))
        assert not sess.run(g.weights_finite)


def _from_scratch():
    bench = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    import from_scratch  # pylint: disable=import-outside-toplevel
    return from_scratch


@pytest.mark.parametrize("num_classes,repeat_batch", [(2, False), (10, True)])
def test_from_scratch_defaults_train_at_32_px(num_classes, repeat_batch):
    # No --weights, no recipe flags: the defaults must train, not diverge. Two
    # classes learn from fresh batches within 12 steps; ten fit one batch.
    row = _from_scratch().measure(32, num_classes, seed=0, steps=12, batch=8,
                                  repeat_batch=repeat_batch, eval_images=8)
    losses = row["losses"]
    assert row["nan_at"] is None and len(losses) == 12 and np.all(np.isfinite(losses))
    assert 0.8 * np.log(num_classes) < losses[0] < 1.5 * np.log(num_classes), losses
    assert max(losses) < 2.0 * np.log(num_classes), losses
    assert np.mean(losses[-4:]) < 0.8 * losses[0], losses


@pytest.mark.slow
def test_from_scratch_defaults_train_at_224_px():
    # Two steps at 224 px, 1000 classes, on one batch: finite, near ln 1000, falling.
    row = _from_scratch().measure(224, 1000, seed=0, steps=3, batch=2, repeat_batch=True,
                                  eval_images=2)
    losses = row["losses"]
    assert row["nan_at"] is None and np.all(np.isfinite(losses)), losses
    assert 0.8 * np.log(1000) < losses[0] < 1.5 * np.log(1000), losses
    assert losses[2] < losses[0], losses
