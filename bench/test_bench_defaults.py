"""Case ``defaults``: how the predictor's steady rate is read from its output (no timing)."""
import pytest

import case_defaults


def test_steady_rate_times_batches_after_the_first():
    # 40 images in batches of 16, 16, 8: batch 1 ends at 10 s (start-up, not
    # timed), batch 2 at 14 s, batch 3 at 16 s; CPU 20, 26, 29 s.
    stamps = [(10.0 if i < 16 else 14.0 if i < 32 else 16.0,
               20.0 if i < 16 else 26.0 if i < 32 else 29.0) for i in range(40)]
    rate, cpu, ends = case_defaults.steady_rate(stamps, batch=16)
    assert rate == pytest.approx(24 / 6.0) and cpu == pytest.approx(9.0 / 24)
    assert ends == [(16, 0.0), (32, 4.0), (40, 6.0)]
    no_proc = [(t, None) for t, _ in stamps]
    assert case_defaults.steady_rate(no_proc, batch=16)[1] is None
    with pytest.raises(ValueError, match="more than one batch"):
        case_defaults.steady_rate(stamps[:16], batch=16)


def test_defaults_table_gives_the_cpu_time_ratio():
    rows = [{"train_img_s": 2.0, "keras_train_img_s": 1.0, "train_ratio": 2.0,
             "predict_img_s": 5.0, "keras_infer_img_s": 4.0, "predict_ratio": 1.25,
             "predict_cpu_ratio": c, "train_path": "x", "predict_path": "y"}
            for c in (1.2, 1.3, 1.4)]
    text = case_defaults.render({"rows": rows, "size": 224, "steps": 6,
                                 "predict_images": 112, "loadavg": ["1 1 1"]})
    assert "over the predictor's, each process's threads together): 1.30 [1.25, 1.35]" in text
    assert "predictions of 112 images (batches 2 to the last timed" in text
