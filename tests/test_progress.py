"""vgg_patch.progress: the progress bar and the duration format."""
import io

import pytest

from vgg_patch.progress import ProgressBar, format_duration


def test_progress_bar_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(20, prefix="epoch 1/2", stream=stream)
    for i in range(1, 21):
        bar.update(i, {"loss": 0.5, "acc": 0.25}, rate=12.34)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10  # one per tenth
    assert lines[0].startswith("epoch 1/2 |##----------------------| 2/20 loss 0.5 acc 0.25 "
                               "12.3 img/s eta ")
    assert lines[-1].startswith("epoch 1/2 |########################| 20/20 ")


def test_progress_bar_close_writes_the_last_state_of_a_cut_loop():
    stream = io.StringIO()
    bar = ProgressBar(45, prefix="epoch 1/3", stream=stream)
    for i in range(1, 4):  # e.g. --max-steps 3: never reaches a tenth
        bar.update(i, {"loss": 2.0})
    assert stream.getvalue() == ""
    bar.close()
    assert stream.getvalue().startswith("epoch 1/3 |#-----------------------| 3/45 loss 2 ")
    bar.update(45)
    assert stream.getvalue().count("\n") == 1


def test_progress_bar_redraws_in_place_on_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(3, stream=stream, tty=True, min_interval=0.0, unit="step")
    bar.update(1, rate=2.0)
    bar.update(3, rate=2.0)
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and "2.0 step/s" in text
    with pytest.raises(ValueError, match="total must be a positive int, got 0"):
        ProgressBar(0)


def test_format_duration():
    assert format_duration(5) == "0:05"
    assert format_duration(125) == "2:05"
    assert format_duration(3725) == "1:02:05"
