"""vgg_patch.data: folder scanning, image checks, the split, the pipeline, demo data."""
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from vgg_patch import data
from vgg_patch.data import folders


def _write(path, array, fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path, format=fmt)
    return path


def _rgb(h, w, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3)).astype(np.uint8)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "imgs"
    _write(str(root / "cat" / "a.png"), _rgb(10, 12, 1))
    _write(str(root / "cat" / "b.JPG"), _rgb(9, 9, 2), "JPEG")
    _write(str(root / "cat" / "sub" / "c.bmp"), _rgb(8, 8, 3), "BMP")
    _write(str(root / "dog" / "d.gif"), _rgb(8, 8, 4)[..., 0], "GIF")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".hidden.png").write_bytes(b"")
    (root / "empty").mkdir()
    (root / "README.md").write_text("a file at the top is ignored")
    return str(root)


def test_scan_lists_classes_sorted_with_labels(folder):
    paths, labels, names = data.scan_image_folder(folder)
    assert names == ["cat", "dog"]
    rel = [os.path.relpath(p, folder) for p in paths]
    assert rel == ["cat/a.png", "cat/b.JPG", "cat/sub/c.bmp", "dog/d.gif"]
    assert labels.tolist() == [0, 0, 0, 1]


def test_scan_warns_about_a_class_folder_without_images(folder, caplog):
    with caplog.at_level(logging.WARNING, logger="vgg_patch.data"):
        data.scan_image_folder(folder)
    assert "empty" in caplog.text and "holds no" in caplog.text


def test_scan_missing_folder_names_it(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="--data-dir '.*nope' does not exist"):
        data.scan_image_folder(missing)


def test_scan_file_instead_of_folder(tmp_path):
    f = tmp_path / "x.png"
    f.write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        data.scan_image_folder(str(f), "--val-dir")


def test_scan_empty_folder(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        data.scan_image_folder(str(tmp_path))


def test_scan_single_class(tmp_path):
    _write(str(tmp_path / "only" / "x.png"), _rgb(4, 4))
    with pytest.raises(ValueError, match="only one class \\('only'\\)"):
        data.scan_image_folder(str(tmp_path))


def _looped_folder(tmp_path, links=("s1", "s2")):
    """Two classes of 12 images; cat holds links to '.' (a loop), dog one link
    to its own subfolder (a duplicate)."""
    root = tmp_path / "looped"
    for i in range(12):
        _write(str(root / "cat" / ("c%02d.png" % i)), _rgb(4, 4, i))
        _write(str(root / "dog" / "sub" / ("d%02d.png" % i)), _rgb(4, 4, 50 + i))
    for name in links:
        os.symlink(".", str(root / "cat" / name))
    os.symlink("sub", str(root / "dog" / "again"))
    os.symlink(os.path.join("..", "dog"), str(root / "cat" / "to_dog"))
    return str(root)


def test_scan_follows_each_real_folder_once(tmp_path, caplog):
    """A loop of two links to '.' (which os.walk(followlinks=True) walks
    exponentially) and a one-link duplicate: each image is listed once."""
    folder = _looped_folder(tmp_path)
    with caplog.at_level(logging.WARNING, logger="vgg_patch.data"):
        paths, labels, names = data.scan_image_folder(folder)
    assert names == ["cat", "dog"]
    assert len(paths) == 24 and labels.tolist() == [0] * 12 + [1] * 12
    real = [os.path.realpath(p) for p in paths]
    assert len(set(real)) == 24
    # The link into another class folder is not followed: dog's images are dog's.
    assert all(os.path.basename(p).startswith("d") for p, l in zip(paths, labels) if l == 1)
    assert all(os.path.basename(p).startswith("c") for p, l in zip(paths, labels) if l == 0)
    assert "4 linked folder(s) already scanned were not followed" in caplog.text
    train, _, val, _ = data.split_train_val(paths, labels, 0.25, seed=0)
    assert not {os.path.realpath(p) for p in train} & {os.path.realpath(p) for p in val}


def test_scan_lists_a_file_reached_twice_once(tmp_path):
    root = tmp_path / "d"
    _write(str(root / "a" / "x.png"), _rgb(4, 4))
    _write(str(root / "b" / "y.png"), _rgb(4, 4, 1))
    os.symlink(str(root / "a" / "x.png"), str(root / "a" / "x-again.png"))
    os.link(str(root / "b" / "y.png"), str(root / "b" / "y-hard.png"))
    paths, labels, _ = data.scan_image_folder(str(root))
    rel = [os.path.relpath(p, str(root)) for p in paths]
    assert rel == ["a/x-again.png", "b/y-hard.png"]  # the first in name order
    assert labels.tolist() == [0, 1]


def _big_tree(tmp_path, folders=400):
    root = tmp_path / "big"
    for c in ("a", "b"):
        for i in range(folders // 2):
            d = root / c / ("f%03d" % i)
            d.mkdir(parents=True)
            (d / "x.png").write_bytes(b"")
    return str(root)


def test_scan_stops_promptly_when_asked(tmp_path):
    folder = _big_tree(tmp_path)
    polls = []

    def should_stop():
        polls.append(1)
        return len(polls) > 50

    with pytest.raises(data.ScanInterrupted, match="interrupted while scanning "
                       "--data-dir .* images in 50 folders so far"):
        data.scan_image_folder(folder, should_stop=should_stop)
    assert len(polls) == 51  # polled once per folder, stopped at the first True
    assert issubclass(data.ScanInterrupted, KeyboardInterrupt)


def test_scan_logs_progress_on_large_folders(tmp_path, monkeypatch, caplog):
    folder = _big_tree(tmp_path)
    monkeypatch.setattr(folders, "PROGRESS_EVERY_FILES", 100)
    monkeypatch.setattr(folders, "PROGRESS_EVERY_SECONDS", 1e9)
    with caplog.at_level(logging.INFO, logger="vgg_patch.data"):
        paths, _, _ = data.scan_image_folder(folder)
    assert len(paths) == 400
    lines = [r.getMessage() for r in caplog.records if "so far" in r.getMessage()]
    assert len(lines) == 3, lines  # after 100, 200 and 300 images
    assert "scanning --data-dir" in lines[0] and "100 images" in lines[0]


def test_check_images_skips_and_counts_corrupt_files(tmp_path, caplog):
    good = _write(str(tmp_path / "good.png"), _rgb(16, 16))
    junk = str(tmp_path / "junk.jpg")
    with open(junk, "wb") as f:
        f.write(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    full = _write(str(tmp_path / "trunc.png"), _rgb(64, 64, 5))
    blob = open(full, "rb").read()
    truncated = str(tmp_path / "truncated.png")
    with open(truncated, "wb") as f:
        f.write(blob[:len(blob) // 2])
    with caplog.at_level(logging.WARNING, logger="vgg_patch.data"):
        paths, labels, bad = data.check_images([good, junk, truncated], [0, 1, 2])
    assert paths == [good]
    assert labels.tolist() == [0]
    assert bad == 2
    assert "skipping corrupt image %s" % junk in caplog.text
    assert "skipping corrupt image %s" % truncated in caplog.text
    assert "skipped 2 corrupt image(s) of 3" in caplog.text


def test_split_is_stratified_disjoint_and_reproducible():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2)
    paths = ["p%d" % i for i in range(len(labels))]
    tp, tl, vp, vl = data.split_train_val(paths, labels, 0.2, seed=3)
    assert sorted(tp + vp) == sorted(paths)
    assert not set(tp) & set(vp)
    assert sorted(np.bincount(vl).tolist()) == [1, 1, 2]  # 10*0.2, 5*0.2, min 1
    assert np.bincount(vl, minlength=3).tolist() == [2, 1, 1]
    for p, l in zip(tp + vp, np.concatenate([tl, vl])):
        assert labels[paths.index(p)] == l
    again = data.split_train_val(paths, labels, 0.2, seed=3)
    assert again[0] == tp and again[2] == vp
    other = data.split_train_val(paths, labels, 0.2, seed=4)
    assert other[2] != vp


def test_split_rejects_bad_fraction_and_too_few_images():
    with pytest.raises(ValueError, match="val_fraction must be in \\(0, 1\\), got 1.5"):
        data.split_train_val(["a", "b"], [0, 1], 1.5)
    with pytest.raises(ValueError, match="too few images"):
        data.split_train_val(["a", "b"], [0, 1], 0.2)


def test_epoch_order_is_a_reproducible_permutation_per_epoch():
    a = data.epoch_order(50, seed=1, epoch=0)
    assert sorted(a.tolist()) == list(range(50))
    assert np.array_equal(a, data.epoch_order(50, seed=1, epoch=0))
    assert not np.array_equal(a, data.epoch_order(50, seed=1, epoch=1))
    assert not np.array_equal(a, data.epoch_order(50, seed=2, epoch=0))


def _run_pipeline(pipe, paths, labels):
    with tf.compat.v1.Session() as sess:
        pipe.initialize(sess, paths, labels)
        out = []
        while True:
            try:
                out.append(sess.run([pipe.images, pipe.labels_out]))
            except tf.errors.OutOfRangeError:
                return out


def test_eval_pipeline_is_a_central_crop(graph, tmp_path):
    # 37 = round(32 * 256 / 224): the resize keeps the size, the crop is [2:34].
    array = _rgb(37, 37, 7)
    path = _write(str(tmp_path / "x.png"), array)
    pipe = data.ImagePipeline(32, 4, training=False)
    [(images, labels)] = _run_pipeline(pipe, [path], [3])
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.float32
    np.testing.assert_allclose(images[0], array[2:34, 2:34] / 255.0, atol=1e-5)
    assert labels.tolist() == [3]


def test_train_pipeline_is_a_random_window(graph, tmp_path):
    array = _rgb(37, 37, 8)
    path = _write(str(tmp_path / "x.png"), array)
    pipe = data.ImagePipeline(32, 1, training=True, flip=False)
    [(images, _)] = _run_pipeline(pipe, [path], [0])
    windows = [array[i:i + 32, j:j + 32] / 255.0 for i in range(6) for j in range(6)]
    assert min(np.abs(images[0] - w).max() for w in windows) < 1e-5


def test_pipeline_decodes_every_format_to_rgb_and_batches(graph, folder):
    paths, labels, _ = data.scan_image_folder(folder)
    pipe = data.ImagePipeline(16, 3, training=False)
    batches = _run_pipeline(pipe, paths, labels)
    assert [b[0].shape for b in batches] == [(3, 16, 16, 3), (1, 16, 16, 3)]
    stacked = np.concatenate([b[0] for b in batches])
    assert stacked.min() >= 0.0 and stacked.max() <= 1.0
    # The GIF is grayscale: its three channels are equal.
    np.testing.assert_array_equal(stacked[3, ..., 0], stacked[3, ..., 2])
    assert np.concatenate([b[1] for b in batches]).tolist() == labels.tolist()


def test_pipeline_drops_an_image_tensorflow_cannot_decode(graph, tmp_path):
    good = _write(str(tmp_path / "good.png"), _rgb(20, 20))
    bad = str(tmp_path / "bad.png")
    with open(bad, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n garbage")
    pipe = data.ImagePipeline(16, 4, training=False)
    [(images, labels)] = _run_pipeline(pipe, [bad, good], [0, 1])
    assert images.shape[0] == 1 and labels.tolist() == [1]


def test_pipeline_keeps_file_lists_out_of_the_graph(graph, tmp_path):
    data.ImagePipeline(16, 4, training=True)
    size = len(graph.as_graph_def().SerializeToString())
    assert size < 100000


def test_pipeline_rejects_bad_sizes(graph):
    with pytest.raises(ValueError, match="image_size must be a positive int, got 0"):
        data.ImagePipeline(0, 4, training=True)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got -1"):
        data.ImagePipeline(8, -1, training=True)


def test_demo_digits_are_sklearn_digits(tmp_path):
    from sklearn.datasets import load_digits
    out = data.write_demo_digits(str(tmp_path / "digits"), upscale=1)
    paths, labels, names = data.scan_image_folder(out)
    digits = load_digits()
    assert names == [str(i) for i in range(10)]
    assert len(paths) == len(digits.target) == 1797
    assert np.bincount(labels).tolist() == np.bincount(digits.target).tolist()
    index = int(os.path.basename(paths[500])[len("digit_"):-len(".png")])
    stored = np.asarray(Image.open(paths[500]))
    np.testing.assert_array_equal(
        stored, np.clip(digits.images[index] * 255.0 / 16.0, 0, 255).astype(np.uint8))
    assert labels[500] == digits.target[index]
    # A second call reuses the complete output.
    os.remove(paths[0])
    data.write_demo_digits(out, upscale=1)
    assert not os.path.exists(paths[0])


def test_the_trainer_passes_its_stop_request_to_the_scan(tmp_path):
    """Ctrl-C/SIGTERM during the scan: the trainer's prepare_data polls the stop flag
    per folder; ScanInterrupted is a KeyboardInterrupt, which the trainer's
    main turns into one line and exit status 130."""
    import types
    from vgg_patch.training.dataset import prepare_data
    args = types.SimpleNamespace(data_dir=_big_tree(tmp_path), demo=False, val_dir=None,
                                 train_dir=str(tmp_path / "run"))
    with pytest.raises(data.ScanInterrupted, match="images in 0 folders so far"):
        prepare_data(args, lambda: True)


def test_sigterm_during_the_scan_stops_the_trainer_with_130(tmp_path, monkeypatch, capsys):
    """A real SIGTERM, sent to this process while the trainer scans: its
    handler sets the stop flag, the scan stops at the next folder, and
    vgg19-cbam-train exits 130 with one line, before anything is written."""
    import signal
    from vgg_patch.cli import train as train_cli
    folder = _big_tree(tmp_path)
    polls = []
    poll = folders._Scan._poll

    def poll_and_signal(self):
        polls.append(1)
        if len(polls) == 20:
            os.kill(os.getpid(), signal.SIGTERM)
        return poll(self)

    monkeypatch.setattr(folders._Scan, "_poll", poll_and_signal)
    run = tmp_path / "run"
    rc = train_cli.main(["--data-dir", folder, "--train-dir", str(run), "-q"])
    err = capsys.readouterr().err
    assert rc == 130
    assert "vgg19-cbam-train: interrupted while scanning --data-dir" in err
    assert 20 <= len(polls) <= 22  # stopped at the next folder, not at the end (400)
    assert not run.exists() or not any(p.name.startswith("model.ckpt") for p in run.iterdir())
