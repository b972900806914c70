"""vgg_patch.training.dataset: a run's images, split or with a --val-dir; the demo."""
import os

import numpy as np
import pytest

from vgg_patch.cli import train as train_cli
from vgg_patch.training import config, dataset


def _args(*argv):
    return train_cli.build_parser().parse_args(list(argv))


def _folder(root, classes, per_class):
    from PIL import Image
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for i in range(per_class):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(
                os.path.join(root, c, "%d.png" % i))
    return root


def test_prepare_data_split_or_separate_val_dir(tmp_path):
    train_dir = _folder(str(tmp_path / "train"), ["a", "b"], 5)
    args = config.resolve_config(_args("--data-dir", train_dir, "--seed", "3"))
    split = dataset.prepare_data(args)
    assert split.class_names == ["a", "b"]
    assert (len(split.train_paths), len(split.val_paths)) == (8, 2)
    assert sorted(split.val_labels.tolist()) == [0, 1]
    val_dir = _folder(str(tmp_path / "val"), ["a", "b"], 2)
    args = config.resolve_config(_args("--data-dir", train_dir, "--val-dir", val_dir))
    sep = dataset.prepare_data(args)
    assert len(sep.train_paths) == 10 and len(sep.val_paths) == 4
    assert all(p.startswith(val_dir) for p in sep.val_paths)
    other = _folder(str(tmp_path / "other"), ["a", "c"], 1)
    args = config.resolve_config(_args("--data-dir", train_dir, "--val-dir", other))
    with pytest.raises(ValueError, match="--val-dir '.*other' has classes \\[a, c\\] but "
                                         "--data-dir '.*train' has \\[a, b\\]"):
        dataset.prepare_data(args)


def test_demo_data_is_the_digits_split_80_20(tmp_path):
    args = config.resolve_config(_args("--train-dir", str(tmp_path / "demo")))
    demo = dataset.prepare_data(args)
    assert demo.class_names == [str(d) for d in range(10)]
    assert (len(demo.train_paths), len(demo.val_paths)) == (1438, 359)
    assert demo.num_corrupt == 0
    assert demo.data_dir == os.path.join(str(tmp_path / "demo"), "demo-data")
    assert sorted(np.bincount(demo.val_labels).tolist())[0] >= 35  # ~20% of each digit
