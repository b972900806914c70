"""Fast checks of the benchmark's own machinery (``python -m pytest bench -q``).

Outside the project's ``tests/`` (pytest.ini's testpaths), so the project suite
does not pay for them; they take a few seconds.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import harness  # noqa: E402
import vgg_ref  # noqa: E402


def test_layer_shapes_match_vgg19_parameter_count():
    total = sum(int(np.prod(w)) + int(np.prod(b)) for _, w, b in vgg_ref.layer_shapes())
    assert total == vgg_ref.TOTAL_PARAMS == 143667240
    assert [n for n, _, _ in vgg_ref.layer_shapes()][-3:] == ["fc6", "fc7", "fc8"]


@pytest.mark.tf_behavior("v2", reason="Keras 3's get_weights needs eager execution; the "
                         "names and shapes do not depend on the behaviour")
def test_keras_names_cover_every_layer_with_matching_shapes():
    import tensorflow as tf
    model = tf.keras.applications.VGG19(weights=None, classifier_activation=None)
    for name, wshape, bshape in vgg_ref.layer_shapes():
        w, b = model.get_layer(vgg_ref.KERAS_NAMES[name]).get_weights()
        assert w.shape == wshape and b.shape == bshape, name


def test_interleaved_rotates_order_and_counts_calls():
    calls = []
    fns = {k: (lambda k=k: calls.append(k)) for k in "abc"}
    times = harness.interleaved(fns, warmup=1, repeats=3)
    assert calls[:3] == ["a", "b", "c"]                  # warm-up
    assert calls[3:] == list("abc") + list("bca") + list("cab")
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3, "c": 3}


# In a fresh interpreter, as the cases measure (one process per case): in the
# test process, memory that earlier tests freed but the allocator kept can take
# the allocation without raising the peak. ``-I``: no PYTHONPATH, so no
# TensorFlow import from tests/v1_behavior (this script uses none).
PEAK_RSS_SCRIPT = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import harness
if not harness.reset_peak_rss():
    print("NO_RESET")
    sys.exit(0)
before = harness.peak_rss_bytes()
block = np.ones(64 * 2**20, np.uint8)  # 64 MiB, touched
after = harness.peak_rss_bytes()
print(int(block.sum()), after - before)
"""


def test_peak_rss_sees_a_large_allocation():
    proc = subprocess.run([sys.executable, "-I", "-c", PEAK_RSS_SCRIPT,
                           os.path.dirname(os.path.abspath(__file__))],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if proc.stdout.strip() == "NO_RESET":
        pytest.skip("cannot reset VmHWM here (/proc/self/clear_refs)")
    total, grown = map(int, proc.stdout.split())
    assert total == 64 * 2**20
    assert grown >= 60 * 2**20


def test_format_table_markdown():
    text = harness.format_table([{"a": 1.23456, "b": "x"}, {"a": 1234.5}],
                                [("a", "A"), ("b", "B")])
    assert text.splitlines() == ["| A | B |", "|---|---|", "| 1.23 | x |", "| 1234 |  |"]


def test_preprocess_np_matches_tensorflow_vgg():
    rgb = np.random.default_rng(0).random((2, 4, 4, 3), dtype=np.float32)
    out = vgg_ref.preprocess_np(rgb)
    np.testing.assert_allclose(out[..., 0], rgb[..., 2] * 255 - 103.939, rtol=1e-6)
    np.testing.assert_allclose(out[..., 2], rgb[..., 0] * 255 - 123.68, rtol=1e-6)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_se_reference_matches_numpy():
    import tensorflow as tf
    import attention_ref
    x = np.random.default_rng(1).standard_normal((2, 3, 3, 32)).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        out = attention_ref.se_ref(tf.constant(x), ratio=4)
        variables = tf.compat.v1.trainable_variables()
        init = tf.compat.v1.global_variables_initializer()
    with tf.compat.v1.Session(graph=g) as sess:
        sess.run(init)
        got = sess.run(out)
        w1, b1, w2, b2 = sess.run(variables)
    z = x.mean(axis=(1, 2))
    gate = _sigmoid(np.maximum(z @ w1 + b1, 0) @ w2 + b2)
    np.testing.assert_allclose(got, x * gate[:, None, None, :], rtol=1e-5, atol=1e-6)


def test_eca_reference_matches_numpy():
    import tensorflow as tf
    import attention_ref
    x = np.random.default_rng(2).standard_normal((2, 3, 3, 16)).astype(np.float32)
    g = tf.Graph()
    with g.as_default():
        out = attention_ref.eca_ref(tf.constant(x), kernel_size=3)
        (kernel,) = tf.compat.v1.trainable_variables()
        init = tf.compat.v1.global_variables_initializer()
    with tf.compat.v1.Session(graph=g) as sess:
        sess.run(init)
        got, k = sess.run([out, kernel])
    z = np.pad(x.mean(axis=(1, 2)), ((0, 0), (1, 1)))
    conv = sum(k[i, 0, 0] * z[:, i:i + 16] for i in range(3))
    np.testing.assert_allclose(got, x * _sigmoid(conv)[:, None, None, :],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("block", ["cbam", "gc", "nl"])
def test_copy_weights_makes_reference_compute_the_slim_block(block):
    pytest.importorskip("slim_attention")
    import slim_attention as slim
    import attention_ref
    import case_blocks
    fns = {"cbam": (slim.convolutional_block_attention_module, attention_ref.cbam_ref),
           "gc": (slim.global_context, attention_ref.gc_ref),
           "nl": (lambda x: slim.non_local_block(x, subsample=True),
                  lambda x: attention_ref.nl_ref(x, subsample=True))}[block]
    a, b = (case_blocks._Graph(f, 5, 32, 2) for f in fns)  # pylint: disable=protected-access
    assert case_blocks.copy_weights(a, b)
    x = np.random.default_rng(3).standard_normal((2, 5, 5, 32)).astype(np.float32)
    got, want = a.output(x), b.output(x)
    assert np.max(np.abs(got - want)) <= 1e-4 * np.max(np.abs(want))
    # The copy really set weights: a different seed changes the output.
    before = a.output(x)
    assert case_blocks.copy_weights(a, b, seed=1)
    assert np.max(np.abs(a.output(x) - before)) > 1e-3


def test_paired_ratios_use_the_same_rounds():
    import report
    ref = [1.0, 2.0, 1.0, 4.0, 1.0]
    ours = [0.5, 2.0, 1.25, 2.0, 1.0]   # ratios 2, 1, 0.8, 2, 1
    median, lower, upper = report.paired_ratios(ref, ours)
    assert median == 1.0 and lower == 1.0 and upper == 2.0
    assert report.paired_ratios(ref, [1.0]) is None
    assert report.paired_ratios(None, ours) is None
    assert report.paired_cell(ref, ours) == "1.000 [1.000, 2.000]"
    assert report.paired_cell(None, ours) == ""


def test_winograd_rows_are_paired_with_their_direct_twins():
    import report
    row = lambda times: {"times_s": times}  # noqa: E731
    by = {("vgg_patch CBAM", 16): row([2.0, 4.0]),
          ("vgg_patch CBAM winograd", 16): row([1.0, 4.0]),       # ratios 2, 1
          ("vgg_patch no-attention", 1): row([1.0]),
          ("vgg_patch no-attention winograd", 1): row([0.5]),
          ("Keras VGG19 (default, XLA)", 16): row([1.0, 1.0])}
    assert report.winograd_speedups(by) == [
        ("no-attention", 1, "2.000 [2.000, 2.000]"),
        ("CBAM", 16, "1.500 [1.250, 1.750]")]


@pytest.mark.tf_behavior("v2", reason="the case starts each worker in the behaviour it "
                         "asks for; one pass checks both")
@pytest.mark.parametrize("behavior", ["v2", "v1"])
def test_build_worker_runs_in_the_behaviour_it_is_asked_for(behavior):
    # The build case measures vgg_patch in both TF behaviours; the worker
    # reports the behaviour TensorFlow itself is in, not the flag it was given.
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py")
    res, err, _ = harness.run_worker(
        script, "build", ["--variant", "baseline", "--npy", "unused.npy",
                          "--tf-behavior", behavior], timeout=300)
    assert err is None, err
    assert res["row"]["variant"] == "baseline"
    assert res["row"]["behavior"] == behavior
    assert res["row"]["peak_bytes"] > 0


def test_build_table_shows_behaviour_and_variables():
    import report
    text = report.render({"machine": {}, "cases": {"build": {"wall_s": 1.0, "error": None, "result": {
        "file_mb": 548.0, "notes": [], "rows": [
            {"variant": "vgg_patch", "behavior": "v1", "variables": "resource",
             "x_file": 1.1, "graphdef_mb": 0.07}]}}}})
    assert "| build | TF behaviour | variables |" in text
    assert "| vgg_patch | v1 | resource |" in text
