"""Image folders, the train/validation split, the tf.data pipeline and the demo data.

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
import concurrent.futures
import logging
import os
import time

import numpy as np

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")

# Training crops come from the image resized so its shorter side is this much
# larger than the model size (the usual 256 -> 224 ratio).
RESIZE_RATIO = 256.0 / 224.0


class ScanInterrupted(KeyboardInterrupt):
    """A stop was requested (Ctrl-C, SIGTERM) while an image folder was scanned.

    A ``KeyboardInterrupt``, so that what stops a run on Ctrl-C stops it here
    too, and a broad ``except Exception`` does not swallow it.
    """


# The scan logs a progress line after this many more images, or seconds.
PROGRESS_EVERY_FILES = 10000
PROGRESS_EVERY_SECONDS = 5.0


def _identity(entry_or_path):
    """``(st_dev, st_ino)`` of what a path resolves to (links followed), or None."""
    try:
        st = (entry_or_path.stat() if isinstance(entry_or_path, os.DirEntry)
              else os.stat(entry_or_path))
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _Scan(object):
    """The state of one :func:`scan_image_folder` call: what has been seen,
    the stop callable and the progress log."""

    def __init__(self, data_dir, argument, should_stop):
        self.data_dir, self.argument, self.should_stop = data_dir, argument, should_stop
        self.folders = set()  # identities of the folders visited (or claimed)
        self.files = set()  # identities of the images listed
        self.num_files = self.num_folders = 0
        self.skipped_links = self.duplicates = 0
        self._t0 = self._last_log = time.monotonic()
        self._files_at_log = 0

    def _poll(self):
        if self.should_stop is not None and self.should_stop():
            raise ScanInterrupted(
                "interrupted while scanning %s %r (%d images in %d folders so far); "
                "nothing to save" % (self.argument, self.data_dir, self.num_files,
                                     self.num_folders))
        now = time.monotonic()
        if (self.num_files - self._files_at_log >= PROGRESS_EVERY_FILES
                or now - self._last_log >= PROGRESS_EVERY_SECONDS):
            logger.info("scanning %s %r: %d images in %d folders so far (%.0f s)",
                        self.argument, self.data_dir, self.num_files,
                        self.num_folders, now - self._t0)
            self._last_log, self._files_at_log = now, self.num_files

    def class_images(self, class_dir):
        """The images under ``class_dir``, in ``os.walk`` order (a folder's own
        files, sorted, then its subfolders, sorted, depth first).

        Every real folder is visited once: a linked folder that resolves to
        one already visited (a link to '.', to a parent, to another class
        folder) is not followed again. An image reached twice (through links,
        or hard links) is listed once, in the first class that reached it.
        """
        files, stack = [], [class_dir]
        while stack:
            self._poll()
            folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as err:
                logger.warning("%s: cannot read folder %s (%s); skipped",
                               self.argument, folder, err.strerror or err)
                continue
            self.num_folders += 1
            subfolders = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    is_dir = entry.is_dir()  # follows links
                except OSError:
                    is_dir = False
                if is_dir:
                    identity = _identity(entry)
                    if identity is None or identity in self.folders:
                        self.skipped_links += 1
                        continue
                    self.folders.add(identity)
                    subfolders.append(entry.path)
                elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                    # stat, not the listing's inode: on overlayfs the two may differ.
                    identity = _identity(entry)
                    if identity is None:  # a broken link
                        logger.warning("%s: skipping %s: it does not resolve to a file",
                                       self.argument, entry.path)
                        continue
                    if identity in self.files:
                        self.duplicates += 1
                        continue
                    self.files.add(identity)
                    self.num_files += 1
                    files.append(entry.path)
            stack.extend(reversed(subfolders))
        return files


def scan_image_folder(data_dir, argument="--data-dir", should_stop=None):
    """Lists the images of a one-subfolder-per-class folder.

    Links are followed, but every real folder is visited once (a linked folder
    that resolves to a folder already visited, e.g. a loop, is not entered
    again) and every real file is listed once, so the scan is bounded by the
    real tree and no image can land in both halves of :func:`split_train_val`.
    A progress line is logged every ``PROGRESS_EVERY_FILES`` images or
    ``PROGRESS_EVERY_SECONDS`` seconds.

    Args:
      data_dir: path of the folder.
      argument: name used for ``data_dir`` in error messages.
      should_stop: optional callable, polled once per folder; when it returns
        True the scan raises :class:`ScanInterrupted`.

    Returns:
      A tuple ``(paths, labels, class_names)``: image paths (sorted within each
      class), their integer labels, and the sorted subfolder names.

    Raises:
      FileNotFoundError: if ``data_dir`` does not exist.
      NotADirectoryError: if ``data_dir`` is not a folder.
      ValueError: if it holds no class subfolder with images, or only one class.
      ScanInterrupted: ``should_stop()`` returned True.
    """
    if not os.path.exists(data_dir):
        raise FileNotFoundError(
            "%s %r does not exist; expected a folder with one subfolder of images "
            "per class" % (argument, data_dir))
    if not os.path.isdir(data_dir):
        raise NotADirectoryError(
            "%s %r is not a folder; expected a folder with one subfolder of images "
            "per class" % (argument, data_dir))
    scan = _Scan(data_dir, argument, should_stop)
    scan.folders.add(_identity(data_dir))
    class_dirs = []
    for entry in sorted(os.listdir(data_dir)):
        class_dir = os.path.join(data_dir, entry)
        if entry.startswith(".") or not os.path.isdir(class_dir):
            continue
        identity = _identity(class_dir)
        if identity in scan.folders:  # a link to data_dir or to another class
            logger.warning("%s: class folder %r is the same folder as another one; "
                           "ignored", argument, class_dir)
            continue
        scan.folders.add(identity)  # claimed: no other class may walk into it
        class_dirs.append((entry, class_dir))
    class_names, paths, labels = [], [], []
    for entry, class_dir in class_dirs:
        files = scan.class_images(class_dir)
        if not files:
            logger.warning("%s: class folder %r holds no %s images; ignored",
                           argument, class_dir, "/".join(IMAGE_EXTENSIONS))
            continue
        label = len(class_names)
        class_names.append(entry)
        paths.extend(files)
        labels.extend([label] * len(files))
    if scan.skipped_links or scan.duplicates:
        logger.warning("%s %r: %d linked folder(s) already scanned were not followed "
                       "again and %d image(s) reached twice were listed once",
                       argument, data_dir, scan.skipped_links, scan.duplicates)
    if not class_names:
        raise ValueError(
            "%s %r holds no images: expected one subfolder per class with %s files"
            % (argument, data_dir, "/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)))
    if len(class_names) == 1:
        raise ValueError(
            "%s %r holds only one class (%r); a classifier needs at least 2 class "
            "subfolders" % (argument, data_dir, class_names[0]))
    return paths, np.asarray(labels, dtype=np.int64), class_names


def _check_one(path):
    """Returns None if Pillow fully decodes ``path``, else the error text."""
    from PIL import Image
    try:
        with Image.open(path) as image:
            image.draft("RGB", (64, 64))  # JPEG: decode at reduced size, faster
            image.load()
            if image.width < 1 or image.height < 1:
                return "empty image"
    except Exception as err:  # PIL raises many types for bad files  # noqa: BLE001
        return "%s: %s" % (type(err).__name__, err)
    return None


def check_images(paths, labels, num_threads=None):
    """Drops the images that do not decode, with one warning per bad file.

    Args:
      paths: image paths.
      labels: their labels, same length.
      num_threads: decoding threads (Pillow releases the GIL); default: CPU count.

    Returns:
      A tuple ``(paths, labels, num_bad)`` holding only the good images.
    """
    if len(paths) != len(labels):
        raise ValueError("paths and labels must have the same length, got %d and %d"
                         % (len(paths), len(labels)))
    workers = num_threads or min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        errors = list(pool.map(_check_one, paths))
    keep = [i for i, err in enumerate(errors) if err is None]
    for path, err in zip(paths, errors):
        if err is not None:
            logger.warning("skipping corrupt image %s (%s)", path, err)
    num_bad = len(paths) - len(keep)
    if num_bad:
        logger.warning("skipped %d corrupt image(s) of %d", num_bad, len(paths))
    return [paths[i] for i in keep], np.asarray(labels)[keep], num_bad


def split_train_val(paths, labels, val_fraction=0.2, seed=0):
    """Splits images into train and validation sets, per class, reproducibly.

    Every class with at least two images gets at least one validation image and
    keeps at least one training image. The same ``seed`` gives the same split.

    Args:
      paths: image paths.
      labels: integer labels, same length.
      val_fraction: fraction of each class used for validation, in (0, 1).
      seed: random seed of the split.

    Returns:
      ``(train_paths, train_labels, val_paths, val_labels)``.

    Raises:
      ValueError: if ``val_fraction`` is not in (0, 1) or a split set is empty.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError("val_fraction must be in (0, 1), got %r" % (val_fraction,))
    labels = np.asarray(labels)
    rng = np.random.RandomState(seed)
    train_idx, val_idx = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        if len(idx) < 2:
            train_idx.extend(idx)
            continue
        n_val = min(len(idx) - 1, max(1, int(round(len(idx) * val_fraction))))
        val_idx.extend(idx[:n_val])
        train_idx.extend(idx[n_val:])
    train_idx, val_idx = sorted(train_idx), sorted(val_idx)
    if not train_idx or not val_idx:
        raise ValueError(
            "too few images to split into train and validation sets (%d images); "
            "add images or give a separate --val-dir" % len(labels))
    return ([paths[i] for i in train_idx], labels[train_idx],
            [paths[i] for i in val_idx], labels[val_idx])


def epoch_order(num_examples, seed, epoch):
    """The shuffled example order of one epoch (the same for the same arguments).

    Args:
      num_examples: number of training examples.
      seed: the run's seed.
      epoch: zero-based epoch number.

    Returns:
      An int64 permutation of ``range(num_examples)``.
    """
    rng = np.random.RandomState([seed % (2 ** 32), epoch % (2 ** 32), 0x5EED])
    return rng.permutation(num_examples).astype(np.int64)


def decode_and_resize(path, image_size, training, flip=True, seed=None):
    """Reads one image file and returns a float32 [size, size, 3] RGB in [0, 1].

    Training: resize the shorter side to ``image_size * 256/224``, take a random
    ``image_size`` crop, optionally flip left-right. Evaluation: same resize,
    central crop.

    Args:
      path: scalar string tensor.
      image_size: output height and width (Python int).
      training: Python bool, random crop/flip when True.
      flip: Python bool, random left-right flips when training.
      seed: op-level seed of the random crop and flip (None: unseeded).

    Returns:
      A float32 tensor of shape ``[image_size, image_size, 3]``.
    """
    import tensorflow as tf
    data = tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    target = float(max(image_size, int(round(image_size * RESIZE_RATIO))))
    scale = target / tf.reduce_min(shape)
    new_size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), image_size)
    image = tf.image.resize(image, new_size, method="bilinear", antialias=True)
    if training:
        image = tf.image.random_crop(image, [image_size, image_size, 3], seed=seed)
        if flip:
            image = tf.image.random_flip_left_right(
                image, seed=None if seed is None else seed + 1)
    else:
        top = (new_size[0] - image_size) // 2
        left = (new_size[1] - image_size) // 2
        image = tf.image.crop_to_bounding_box(image, top, left, image_size, image_size)
    image = tf.clip_by_value(image, 0.0, 1.0)
    image.set_shape([image_size, image_size, 3])
    return image


class ImagePipeline(object):
    """A batched, prefetched, parallel-decoding input pipeline fed with file lists.

    Builds ops in the current default graph: placeholders ``paths`` and
    ``labels``, an initializable iterator, and ``images``/``labels_out`` from its
    ``get_next()`` (or use ``iterator.string_handle()`` with a feedable iterator).
    Call :meth:`initialize` with the file list of a pass (e.g. one epoch, in the
    order wanted) before reading it.

    Args:
      image_size: model input size.
      batch_size: images per batch (the last batch of a pass may be smaller).
      training: random crops and flips when True, central crops otherwise.
      flip: random left-right flips when training.
      num_parallel_calls: decode parallelism; default ``tf.data.AUTOTUNE``.
      seed: op-level seed of the random crops and flips (default 0; the graph
        seed, ``tf.compat.v1.set_random_seed``, completes it).
      name: name scope of the ops.
    """

    def __init__(self, image_size, batch_size, training, flip=True,
                 num_parallel_calls=None, seed=0, name="input"):
        import tensorflow as tf
        if int(image_size) < 1:
            raise ValueError("image_size must be a positive int, got %r" % (image_size,))
        if int(batch_size) < 1:
            raise ValueError("batch_size must be a positive int, got %r" % (batch_size,))
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        autotune = tf.data.AUTOTUNE
        with tf.compat.v1.name_scope(name):
            self.paths = tf.compat.v1.placeholder(tf.string, [None], name="paths")
            self.labels = tf.compat.v1.placeholder(tf.int64, [None], name="labels")
            dataset = tf.data.Dataset.from_tensor_slices((self.paths, self.labels))

            def _load(path, label):
                return (decode_and_resize(path, self.image_size, training, flip, seed),
                        label)

            dataset = dataset.map(_load, num_parallel_calls=num_parallel_calls or autotune)
            dataset = dataset.ignore_errors()
            dataset = dataset.batch(self.batch_size).prefetch(autotune)
            self.dataset = dataset
            self.iterator = tf.compat.v1.data.make_initializable_iterator(dataset)
            self.images, self.labels_out = self.iterator.get_next()

    def initialize(self, sess, paths, labels):
        """Starts a pass over ``paths``/``labels`` (in that order)."""
        sess.run(self.iterator.initializer,
                 {self.paths: np.asarray(paths, dtype=object).astype(bytes),
                  self.labels: np.asarray(labels, dtype=np.int64)})


def write_demo_digits(out_dir, upscale=4):
    """Writes scikit-learn's 8x8 handwritten digits as PNG files, one folder per digit.

    The data (1,797 images, 10 classes) ships inside scikit-learn, so nothing is
    downloaded. Each 8x8 image (values 0..16) is scaled to 0..255 and upscaled
    ``upscale`` times with bilinear filtering, then stored as a grayscale PNG; the
    pipeline turns it into RGB at the model's size. Existing complete output is
    reused.

    Args:
      out_dir: folder to write; gets subfolders ``0`` ... ``9``.
      upscale: integer upscaling factor of the stored PNGs.

    Returns:
      ``out_dir``.
    """
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    marker = os.path.join(out_dir, ".complete")
    if os.path.exists(marker):
        return out_dir
    size = 8 * int(upscale)
    for index, (pixels, target) in enumerate(zip(digits.images, digits.target)):
        class_dir = os.path.join(out_dir, str(int(target)))
        os.makedirs(class_dir, exist_ok=True)
        array = np.clip(pixels * (255.0 / 16.0), 0, 255).astype(np.uint8)
        image = Image.fromarray(array).resize((size, size), Image.BILINEAR)
        image.save(os.path.join(class_dir, "digit_%04d.png" % index))
    with open(marker, "w") as f:
        f.write("%d\n" % len(digits.target))
    logger.info("wrote the demo dataset (%d scikit-learn digits, %dx%d PNG) to %s",
                len(digits.target), size, size, out_dir)
    return out_dir
