"""Image folders, the train/validation split, the tf.data pipeline and the demo data.

* :mod:`~vgg_patch.data.folders` -- scanning and checking image folders;
* :mod:`~vgg_patch.data.sampling` -- the split and each epoch's order;
* :mod:`~vgg_patch.data.pipeline` -- the tf.data pipeline;
* :mod:`~vgg_patch.data.demo` -- the demo's digits.

The layout is the usual one: a folder with one subfolder per class, each holding
JPEG, PNG, BMP or GIF files. Class names are the subfolder names, sorted, so
class ``i`` is always the ``i``-th name in :func:`scan_image_folder`'s list.

Images are checked with Pillow before training (:func:`check_images`): a file
that does not decode is skipped with a warning and counted, never a crash. As a
second line of defence the pipeline also drops any file TensorFlow itself fails
to decode (``tf.data.Dataset.ignore_errors``); the training loop counts those
from the number of images each epoch really delivered.

The pipeline is graph mode (``tf.compat.v1``): file lists enter through
placeholders (so they never become constants in the GraphDef) and an
initializable iterator. Shuffling is done per epoch in NumPy with a seed derived
from ``(seed, epoch)``, which makes every epoch's order reproducible; that is
what lets a resumed run continue mid-epoch exactly where the killed one stopped.
"""
from vgg_patch.data.demo import write_demo_digits
from vgg_patch.data.folders import (IMAGE_EXTENSIONS, PROGRESS_EVERY_FILES,
                                    PROGRESS_EVERY_SECONDS, ScanInterrupted, check_images,
                                    scan_image_folder)
from vgg_patch.data.pipeline import RESIZE_RATIO, ImagePipeline, decode_and_resize
from vgg_patch.data.sampling import epoch_order, split_train_val

__all__ = ["IMAGE_EXTENSIONS", "PROGRESS_EVERY_FILES", "PROGRESS_EVERY_SECONDS",
           "RESIZE_RATIO", "ImagePipeline", "ScanInterrupted", "check_images",
           "decode_and_resize", "epoch_order", "scan_image_folder", "split_train_val",
           "write_demo_digits"]
