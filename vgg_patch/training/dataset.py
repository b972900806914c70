"""The images of a run: scanned, checked and split (see :mod:`vgg_patch.data`)."""
import dataclasses
import os

import numpy as np

from vgg_patch import data as data_lib
from vgg_patch.cli.common import short_list
from vgg_patch.training.run_dir import DEMO_DATA_DIR


@dataclasses.dataclass
class Dataset:
    """The image lists of a run (see :func:`prepare_data`).

    Attributes:
      train_paths, train_labels: the training images and their labels.
      val_paths, val_labels: the validation images and their labels.
      class_names: the class names, in label order.
      num_corrupt: images skipped because Pillow could not decode them.
      data_dir: the folder the training images came from.
    """
    train_paths: list
    train_labels: np.ndarray
    val_paths: list
    val_labels: np.ndarray
    class_names: list
    num_corrupt: int
    data_dir: str


def _separate_val_dir(args, class_names, should_stop):
    """``(paths, labels, num_bad)`` of ``--val-dir``, checked against the classes."""
    val_paths, val_labels, val_names = data_lib.scan_image_folder(args.val_dir,
                                                                  "--val-dir", should_stop)
    if val_names != class_names:
        raise ValueError(
            "--val-dir %r has classes %s but --data-dir %r has %s; they must match"
            % (args.val_dir, short_list(val_names), args.data_dir,
               short_list(class_names)))
    val_paths, val_labels, bad = data_lib.check_images(val_paths, val_labels)
    if not val_paths:
        raise ValueError("--val-dir %r: no readable image left" % args.val_dir)
    return val_paths, val_labels, bad


def prepare_data(args, should_stop=None, demo_root=None):
    """Scans, checks and splits the images of the run (writes the demo data if needed).

    Args:
      args: the resolved configuration.
      should_stop: optional callable polled during the scan (see
        :func:`vgg_patch.data.scan_image_folder`).
      demo_root: where the demo's images go (default ``--train-dir``; a
        cluster's non-chief workers write nothing there).

    Returns:
      A :class:`Dataset`.

    Raises:
      FileNotFoundError, NotADirectoryError, ValueError: for a missing folder,
        no images, one class, no usable image left or mismatching class folders.
    """
    data_dir = args.data_dir
    if args.demo:
        data_dir = data_lib.write_demo_digits(os.path.join(demo_root or args.train_dir,
                                                           DEMO_DATA_DIR))
    paths, labels, class_names = data_lib.scan_image_folder(
        data_dir, "--data-dir" if not args.demo else "demo data", should_stop)
    paths, labels, bad = data_lib.check_images(paths, labels)
    if args.val_dir:
        val_paths, val_labels, bad_val = _separate_val_dir(args, class_names, should_stop)
        bad += bad_val
        train_paths, train_labels = paths, labels
    else:
        train_paths, train_labels, val_paths, val_labels = data_lib.split_train_val(
            paths, labels, args.val_fraction, args.seed)
    if not train_paths:
        raise ValueError("--data-dir %r: no readable image left" % data_dir)
    if len(np.unique(train_labels)) < 2:
        raise ValueError("--data-dir %r: only one class has readable images; a "
                         "classifier needs at least 2" % data_dir)
    return Dataset(train_paths, train_labels, val_paths, val_labels, class_names, bad,
                   data_dir)
