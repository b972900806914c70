"""The ``winograd`` and ``defaults`` cases' bookkeeping (no timing here)."""
import case_defaults
import case_winograd
from vgg_patch import layout


def test_layer_table_covers_vgg19_but_conv1_1_once_per_shape():
    table = case_winograd.layer_table()
    assert sum(count for *_, count in table) == len(layout.CONV_LAYERS) - 1
    assert [row[0] for row in table] == ["conv1_2", "conv2_1", "conv2_2", "conv3_1",
                                         "conv3_2", "conv4_1", "conv4_2", "conv5_1"]
    assert [case_winograd.side_of(224, s) for s in (1, 2, 3, 4, 5)] == [224, 112, 56, 28, 14]
    assert case_winograd.side_of(33, 3) == 9  # 'SAME' pools round up


def _row(layer, count, direct_ms, winograd_ms, size=32):
    return {"size": size, "mode": "train", "batch": 16, "layer": layer, "count": count,
            "direct_ms": direct_ms, "winograd_ms": winograd_ms, "speedup": direct_ms /
            winograd_ms, "q1": 1.0, "q3": 1.0}


def test_network_sums_weight_each_shape_by_its_count():
    rows = [_row("conv3_2", 3, 10.0, 5.0), _row("conv5_1", 4, 1.0, 2.0)]
    assert case_winograd.network_sums(rows) == {(32, "train", 16): (34.0, 23.0)}
    assert case_winograd.network_sums(rows, {"conv5_1"}) == {(32, "train", 16): (4.0, 8.0)}
    text = case_winograd.render({"rows": rows, "loadavg": ["32 px train b16: 1.0 1.0 1.0"]})
    assert "| conv3_2 (x3) | 32 | 8x8, 256->256 |" in text and "speed-up 1.48" in text


def test_defaults_table_gives_marginal_rates_and_round_ratios():
    rows = [{"train_img_s": 2.0 * r, "keras_train_img_s": 1.0, "train_ratio": 2.0 * r,
             "predict_img_s": 5.0, "keras_infer_img_s": 4.0, "predict_ratio": 1.25,
             "train_path": "convolutions: x", "predict_path": "convolutions: y"}
            for r in (1, 1.5, 2)]
    text = case_defaults.render({"rows": rows, "size": 224, "steps": 6,
                                 "predict_images": (16, 112), "loadavg": ["1 1 1"]})
    assert "| vgg19-cbam-train (defaults) | 224 | 16 | 3.00 [2.50, 3.50] |" in text
    assert "3.00 [2.50, 3.50] | 3 | convolutions: x |" in text
    assert "| 1.25 [1.25, 1.25] | 3 | convolutions: y |" in text
