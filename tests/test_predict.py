"""vgg19-cbam-predict helpers: class names, arguments.

The end-to-end predict tests (a trained run, top-5 output, the PNG) are in
test_cli_train_story.py, which trains the run they need; the attention figure's
tests are in test_figure.py.
"""
import pytest

from vgg_patch.cli import predict


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


def _stub_run(tmp_path, monkeypatch):
    """Arguments of a predict run whose network is stubbed (the real one is
    tested end to end in test_cli_train_story.py): a synset of 2 classes, a dummy
    weights file, and ``predict.predict`` replaced by one that gives class 1
    to every image it is handed (and records them)."""
    import numpy as np
    weights = tmp_path / "w.npy"
    weights.write_bytes(b"x")
    synset = tmp_path / "synset.txt"
    synset.write_text("n0 cat\nn1 dog\n")
    handed = []

    def fake_predict(weights, names, size, paths, attention=True, **kwargs):
        handed.extend(paths)
        probs = np.tile([[0.25, 0.75]], (len(paths), 1))
        return list(paths), np.zeros((len(paths), size, size, 3)), probs, None

    monkeypatch.setattr(predict, "predict", fake_predict)
    return ["--weights", str(weights), "--synset", str(synset), "--no-attention",
            "--image-size", "8"], handed


def _png(path):
    from PIL import Image
    Image.new("RGB", (4, 4), (200, 10, 10)).save(str(path))
    return str(path)


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
