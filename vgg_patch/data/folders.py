"""Image folders: one subfolder per class, scanned once, every image checked.

The layout is the usual one: a folder with one subfolder per class, each holding
JPEG, PNG, BMP or GIF files. Class names are the subfolder names, sorted, so
class ``i`` is always the ``i``-th name in :func:`scan_image_folder`'s list.

Images are checked with Pillow before training (:func:`check_images`): a file
that does not decode is skipped with a warning and counted, never a crash.
"""
import concurrent.futures
import logging
import os
import time

import numpy as np

logger = logging.getLogger("vgg_patch.data")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


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


def _class_folders(scan):
    """``(name, path)`` of each class subfolder of ``scan.data_dir``, sorted; each
    one is claimed in ``scan.folders`` so that no other class walks into it."""
    scan.folders.add(_identity(scan.data_dir))
    class_dirs = []
    for entry in sorted(os.listdir(scan.data_dir)):
        class_dir = os.path.join(scan.data_dir, entry)
        if entry.startswith(".") or not os.path.isdir(class_dir):
            continue
        identity = _identity(class_dir)
        if identity in scan.folders:  # a link to data_dir or to another class
            logger.warning("%s: class folder %r is the same folder as another one; "
                           "ignored", scan.argument, class_dir)
            continue
        scan.folders.add(identity)
        class_dirs.append((entry, class_dir))
    return class_dirs


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
    class_names, paths, labels = [], [], []
    for entry, class_dir in _class_folders(scan):
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
