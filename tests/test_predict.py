"""vgg19-cbam-predict helpers: class names, arguments, the output batch by batch.

The end-to-end predict tests (a trained run, top-5 output, the PNG) are in
test_cli_train_story.py, which trains the run they need; the attention figure's
tests are in test_figure.py.
"""
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from vgg_patch.cli import predict, prediction
from vgg_patch.cli.common import EXIT_INTERRUPTED
from vgg_patch.data import ImagePipeline


def test_read_class_names_plain_and_synset(tmp_path):
    plain = tmp_path / "classes.txt"
    plain.write_text("cat\ndog\n\n")
    assert predict.read_class_names(str(plain)) == ["cat", "dog"]
    synset = tmp_path / "synset.txt"
    synset.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    assert predict.read_class_names(str(synset), synset=True) == [
        "tench, Tinca tinca", "goldfish, Carassius auratus"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(predict.UsageError, match="is empty"):
        predict.read_class_names(str(empty))
    with pytest.raises(predict.UsageError, match="does not exist"):
        predict.read_class_names(str(tmp_path / "none.txt"))


def test_weights_without_class_names_is_a_usage_error(tmp_path, capsys):
    weights = tmp_path / "w.npy"
    weights.write_bytes(b"x")
    image = tmp_path / "a.png"
    image.write_bytes(b"x")
    rc = predict.main(["--weights", str(weights), "--train-dir", str(tmp_path), str(image)])
    err = capsys.readouterr().err
    assert rc == 2 and "no class names: give --synset synset.txt" in err
    rc = predict.main(["--weights", str(weights), "--synset", str(tmp_path / "s.txt"),
                       "--no-attention", "--attention-map", "x.png", str(image)])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def _stub_run(tmp_path, monkeypatch, batch=16, interrupt_after=None, on_batch=None):
    """Arguments of a predict run whose network is stubbed (the real one is
    tested end to end in test_cli_train_story.py): a synset of 2 classes, a dummy
    weights file, and ``predict.predict_batches`` replaced by one that gives
    class 1 to every image it is handed (and records them), ``batch`` images
    per batch, with an ``(index, probabilities)`` line in ``handed`` per batch;
    ``interrupt_after``: Ctrl-C (KeyboardInterrupt) after that many batches;
    ``on_batch()`` is called before each batch is computed."""
    import numpy as np
    weights = tmp_path / "w.npy"
    weights.write_bytes(b"x")
    synset = tmp_path / "synset.txt"
    synset.write_text("n0 cat\nn1 dog\n")
    handed = []

    def fake_batches(weights, names, size, paths, attention=True, images=True, **kwargs):
        for start in range(0, len(paths), batch):
            if on_batch is not None:
                on_batch()
            if interrupt_after is not None and start == interrupt_after * batch:
                raise KeyboardInterrupt
            part = list(paths[start:start + batch])
            handed.extend(part)
            probs = np.tile([[0.25, 0.75]], (len(part), 1))
            yield (part, np.zeros((len(part), size, size, 3)) if images else None, probs,
                   None)

    monkeypatch.setattr(predict, "predict_batches", fake_batches)
    return ["--weights", str(weights), "--synset", str(synset), "--no-attention",
            "--image-size", "8"], handed


def _png(path, colour=(200, 10, 10)):
    from PIL import Image
    Image.new("RGB", (4, 4), colour).save(str(path))
    return str(path)


def _blocks(out):
    """The printed output as ``[(path, [(probability, name), ...]), ...]``; fails
    on a line that is neither a path nor a whole class line."""
    blocks = []
    for line in out.splitlines():
        if line.startswith("  "):
            prob, name = line.split(None, 1)
            blocks[-1][1].append((float(prob), name))
        else:
            blocks.append((line, []))
    return blocks


def test_each_batch_is_printed_as_it_comes_in_the_order_given(tmp_path, monkeypatch,
                                                               capsys):
    chunks, errs = [], []  # what stdout had gained when each batch began, then at the end

    def on_batch():
        captured = capsys.readouterr()
        chunks.append(captured.out)
        errs.append(captured.err)

    argv, handed = _stub_run(tmp_path, monkeypatch, batch=4, on_batch=on_batch)
    images = [_png(tmp_path / ("%02d.png" % i)) for i in (5, 3, 9, 0, 7, 1, 8, 2, 4, 6)]
    assert predict.main(argv + images) == 0
    on_batch()
    err = "".join(errs)
    # Each batch began after the batch before it was printed, whole.
    assert [len(_blocks(c)) for c in chunks] == [0, 4, 4, 2]
    blocks = _blocks("".join(chunks))
    assert [b[0] for b in blocks] == images == handed
    assert all(b[1] == [(0.75, "dog"), (0.25, "cat")] for b in blocks)
    # 10 images in 3 batches: progress on stderr after batches 2 and 3.
    progress = [line for line in err.splitlines() if line.startswith("predicted ")]
    assert [line.split(",")[0] for line in progress] == ["predicted 8/10 images",
                                                         "predicted 10/10 images"]
    assert progress[-1].endswith(" img/s, 0:00 left")


def test_one_batch_prints_no_progress_line(tmp_path, monkeypatch, capsys):
    argv, _ = _stub_run(tmp_path, monkeypatch)
    assert predict.main(argv + [_png(tmp_path / "a.png"), _png(tmp_path / "b.png")]) == 0
    out, err = capsys.readouterr()
    assert [b[0] for b in _blocks(out)] == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    assert "predicted " not in err


def test_ctrl_c_keeps_whole_batches_and_exits_130(tmp_path, monkeypatch, capsys):
    argv, handed = _stub_run(tmp_path, monkeypatch, batch=3, interrupt_after=2)
    images = [_png(tmp_path / ("%d.png" % i)) for i in range(8)]
    assert predict.main(argv + images) == EXIT_INTERRUPTED == 130
    out, err = capsys.readouterr()
    blocks = _blocks(out)
    assert [b[0] for b in blocks] == images[:6] == handed
    assert all(len(b[1]) == 2 for b in blocks)
    assert "vgg19-cbam-predict: interrupted after 6 of 8 images" in err


def test_ctrl_c_while_printing_waits_for_the_block():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with prediction.interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("after the signal")
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with prediction.interrupts_deferred():  # no signal, no exception
        reached.append("again")
    assert reached[-1] == "again"


def test_batches_keep_the_input_order_and_name_what_tensorflow_drops(tmp_path, caplog):
    """The real pipeline: distinct solid colours tell the images apart; a file
    TensorFlow cannot decode (here a TIFF) is dropped and named in the log."""
    colours = [(10 * i, 200 - 10 * i, 7 * i) for i in range(6)]
    paths = [_png(tmp_path / ("%d.png" % i), c) for i, c in enumerate(colours)]
    for i in (2, 5):  # a middle one and the last one
        paths[i] = str(tmp_path / ("%d.tiff" % i))
        from PIL import Image
        Image.new("RGB", (4, 4), colours[i]).save(paths[i])
    graph = tf.Graph()
    with graph.as_default():
        pipe = ImagePipeline(6, 2, False)
        mean = tf.reduce_mean(pipe.images, axis=[1, 2])
        with tf.compat.v1.Session(graph=graph) as sess:
            batches = list(prediction.iterate_over_images(sess, pipe, {"rgb": mean}, paths))
    keep = [0, 1, 3, 4]
    assert [b[0] for b in batches] == [[paths[0], paths[1]], [paths[3], paths[4]]]
    got = np.concatenate([b[1]["rgb"] for b in batches])
    np.testing.assert_allclose(got, np.array(colours)[keep] / 255.0, atol=1e-5)
    skipped = [r.getMessage() for r in caplog.records if "could not decode" in r.getMessage()]
    assert skipped == ["skipping %s: TensorFlow could not decode it" % paths[i]
                       for i in (2, 5)]


def test_a_missing_image_is_skipped_like_a_corrupt_one(tmp_path, monkeypatch, capsys):
    argv, handed = _stub_run(tmp_path, monkeypatch)
    good = _png(tmp_path / "good.png")
    missing = str(tmp_path / "missing.jpg")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png")
    rc = predict.main(argv + [good, missing])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "skipping missing image %s (no such file)" % missing in err
    assert handed == [good]
    assert out.splitlines()[0] == good and "dog" in out.splitlines()[1]
    # Missing and corrupt together: the good one is still predicted, exit 1.
    del handed[:]
    rc = predict.main(argv + [missing, str(corrupt), good])
    out, err = capsys.readouterr()
    assert rc == 1 and handed == [good]
    assert "skipping missing image %s" % missing in err
    assert "skipping corrupt image %s" % corrupt in err


def test_no_readable_image_is_bad_input(tmp_path, monkeypatch, capsys):
    argv, handed = _stub_run(tmp_path, monkeypatch)
    missing = str(tmp_path / "missing.jpg")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"not a png")
    assert predict.main(argv + [missing]) == 2
    assert "error: no such image file: %s" % missing in capsys.readouterr().err
    assert predict.main(argv + [missing, str(corrupt)]) == 2
    err = capsys.readouterr().err
    assert "error: none of the 2 image(s) could be read (1 missing, 1 corrupt)" in err
    assert handed == []


def test_predict_joins_the_batches(monkeypatch):
    def two_batches(weights, names, size, paths, attention, batch_size, bf16, winograd):
        for part in (paths[:2], paths[2:]):
            n = len(part)
            yield (part, np.full((n, size, size, 3), n, np.float32), np.full((n, 2), n),
                   np.full((n, 1, 1, 1), n) if attention else None)

    monkeypatch.setattr(predict, "predict_batches", two_batches)
    paths, images, probs, maps = predict.predict("w.npy", ["a", "b"], 4, list("pqr"))
    assert paths == list("pqr") and images.shape == (3, 4, 4, 3)
    assert probs[:, 0].tolist() == [2, 2, 1] and maps.shape == (3, 1, 1, 1)
    assert predict.predict("w.npy", ["a", "b"], 4, list("pq"), attention=False)[3] is None
    monkeypatch.setattr(predict, "predict_batches", lambda *args: iter(()))
    assert predict.predict("w.npy", ["a", "b"], 4, ["p"]) == ([], None, None, None)


_PIPE_SCRIPT = '''
import sys
import numpy as np
from vgg_patch.cli import predict

def fake_batches(weights, names, size, paths, **kwargs):
    for start in range(0, len(paths), 2):
        part = list(paths[start:start + 2])
        yield part, None, np.tile([[0.25, 0.75]], (len(part), 1)), None

predict.predict_batches = fake_batches
sys.exit(predict.main(sys.argv[1:]))
'''


def test_a_closed_output_pipe_ends_quietly_with_141(tmp_path, monkeypatch):
    """`vgg19-cbam-predict ... | head -1`: the reader goes after one line; the
    command stops at its next batch with status 141 and no traceback."""
    import subprocess
    import sys
    args, _ = _stub_run(tmp_path, monkeypatch)  # its files; the stub is the script's
    images = [_png(tmp_path / ("%03d.png" % i)) for i in range(400)]
    proc = subprocess.Popen([sys.executable, "-c", _PIPE_SCRIPT] + args + images,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().decode().strip() == images[0]
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err.decode()[-2000:]
    assert b"Traceback" not in err and b"BrokenPipeError" not in err


def test_slim_predict_prints_batch_by_batch_and_ctrl_c_exits_130(tmp_path, monkeypatch,
                                                                   capsys):
    """slim-attention-predict shares the batch loop: each batch is printed before
    the next is computed, and Ctrl-C keeps the whole batches printed."""
    from vgg_patch.cli import slim_predict
    printed = []

    def fake_batches(export, paths, batch_size=16, bf16=False, winograd=(), images=True):
        for start in range(0, len(paths), batch_size):
            printed.append(len(_blocks(capsys.readouterr().out)))
            if start == 2 * batch_size:
                raise KeyboardInterrupt
            part = list(paths[start:start + batch_size])
            yield part, None, np.tile([[0.25, 0.75]], (len(part), 1)), None

    monkeypatch.setattr(slim_predict, "predict_batches", fake_batches)
    monkeypatch.setattr(slim_predict.slim_export, "read", lambda train_dir: {
        "model": "resnet_v1_50", "attention": "cbam", "image_size": 32,
        "classes": ["cat", "dog"]})
    images = [_png(tmp_path / ("%d.png" % i)) for i in range(7)]
    rc = slim_predict.main(["--train-dir", str(tmp_path), "--batch-size", "3",
                            "--no-winograd"] + images)
    assert rc == EXIT_INTERRUPTED
    assert printed == [0, 3, 3]  # each batch began after the one before was printed
    err = capsys.readouterr().err
    assert "slim-attention-predict: interrupted after 6 of 7 images" in err
