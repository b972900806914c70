"""vgg19-cbam-predict helpers: class names, arguments.

The end-to-end predict tests (a trained run, top-5 output, the PNG) are in
test_train_cli.py, which trains the run they need; the attention figure's
tests are in test_figure.py.
"""
import pytest

from vgg_patch import predict


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
