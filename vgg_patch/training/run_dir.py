"""What lands in a run's folder (``--train-dir``), and the files describing the run.

::

    TRAIN_DIR/model.ckpt-STEP.*, checkpoint   the newest checkpoints (loop.Trainer)
    TRAIN_DIR/best/model.ckpt-STEP.*          the best validation accuracy so far
    TRAIN_DIR/export/vgg19-cbam.npy           the best weights (Vgg19.save_npy)
    TRAIN_DIR/classes.txt, run.json           for vgg19-cbam-predict (this module)
    TRAIN_DIR/events.out.tfevents.*           TensorBoard summaries
    TRAIN_DIR/demo-data/                      the built-in demo's images

:func:`checkpoint_candidates` lists the complete checkpoints. Every writer
writes a temp file and renames it; :func:`remove_temp_files` deletes what a
killed or failed save left behind.
"""
import json
import logging
import os
import re

from vgg_patch.cli.common import UsageError, short_list

logger = logging.getLogger("vgg_patch.train")

DEFAULT_TRAIN_DIR = "vgg19-cbam-train"
DEMO_TRAIN_DIR = "vgg19-cbam-demo"
CKPT_NAME = "model.ckpt"
BEST_DIR = "best"
EXPORT_NAME = os.path.join("export", "vgg19-cbam.npy")
# slim-attention-train's export (training/slim_export.py): a Saver checkpoint + a JSON.
SLIM_EXPORT_CHECKPOINT = os.path.join("export", "slim-attention.ckpt")
SLIM_EXPORT_JSON = os.path.join("export", "slim-attention.json")
CLASSES_FILE = "classes.txt"
RUN_FILE = "run.json"
DEMO_DATA_DIR = "demo-data"


def atomic_write(path, text):
    """Writes ``text`` to ``path`` through a temp file renamed over it."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_run_settings(train_dir):
    """The ``run.json`` of ``train_dir`` as a dict ({} if there is none)."""
    path = os.path.join(train_dir, RUN_FILE)
    return _read_json(path) if os.path.isfile(path) else {}


_CKPT_RE = re.compile(r"^%s-(\d+)\.index$" % re.escape(CKPT_NAME))


def checkpoint_candidates(train_dir):
    """Complete-looking checkpoints of ``train_dir``, newest step first.

    A checkpoint counts only if its ``.index`` (written last) and all its
    ``.data-*`` shards exist; half-written ones (a kill mid-save) are skipped.
    The ``checkpoint`` state file is not trusted: a kill between writing the
    files and updating it must not lose the newest checkpoint.

    Args:
      train_dir: the run's folder.

    Returns:
      A list of ``(step, prefix)`` pairs.
    """
    if not os.path.isdir(train_dir):
        return []
    found = []
    names = set(os.listdir(train_dir))
    for name in names:
        match = _CKPT_RE.match(name)
        if not match:
            continue
        prefix = name[:-len(".index")]
        shards = [n for n in names if n.startswith(prefix + ".data-")]
        total = None
        for shard in shards:
            m = re.match(r".*\.data-(\d+)-of-(\d+)$", shard)
            if m:
                total = int(m.group(2))
        complete = [s for s in shards if re.match(r".*\.data-\d+-of-\d+$", s)]
        if total is None or len(complete) != total:
            logger.warning("ignoring incomplete checkpoint %s (missing data files)",
                           os.path.join(train_dir, prefix))
            continue
        found.append((int(match.group(1)), os.path.join(train_dir, prefix)))
    return sorted(found, reverse=True)


def _check_resumed_run(args, dataset, settings):
    """Refuses a run folder that holds a run on other classes or image size."""
    classes_path = os.path.join(args.train_dir, CLASSES_FILE)
    if os.path.exists(classes_path):
        with open(classes_path, encoding="utf-8") as f:
            old = [line.rstrip("\n") for line in f if line.strip()]
        if old != list(dataset.class_names):
            raise UsageError(
                "--train-dir %r holds a run on classes %s, not %s; use another "
                "--train-dir" % (args.train_dir, short_list(old),
                                 short_list(dataset.class_names)))
    if os.path.exists(os.path.join(args.train_dir, RUN_FILE)):
        old = read_run_settings(args.train_dir)
        for key in ("image_size", "num_classes", "model", "attention"):
            if old.get(key, settings.get(key)) != settings.get(key):
                raise UsageError("--train-dir %r holds a run with %s=%r, not %r; use "
                                 "another --train-dir" % (args.train_dir, key,
                                                          old.get(key), settings.get(key)))
        for key in ("num_train", "seed", "batch_size"):
            if old.get(key) != settings[key]:
                logger.warning("%s changed since the run in %s was started (%r -> %r): "
                               "the resumed epoch position is approximate", key,
                               args.train_dir, old.get(key), settings[key])


def check_or_write_run_files(args, dataset, num_classes, network_settings=None):
    """Writes ``classes.txt`` and ``run.json``; first checks them against a run to resume.

    The check applies only when ``--train-dir`` holds checkpoints: files left
    by a run that never saved one (e.g. refused weights) are simply replaced.

    Args:
      args: the resolved configuration.
      dataset: the run's :class:`vgg_patch.training.dataset.Dataset`.
      num_classes: number of classes.
      network_settings: what the network's ``run_settings`` records (e.g.
        ``model``, ``attention``), checked on resume where the old run has it.

    Raises:
      UsageError: if the train dir holds a run with other classes, image size
        or network, or cannot be written.
    """
    settings = {"image_size": args.image_size, "num_classes": num_classes,
                "attention": "cbam"}
    settings.update(network_settings or {})
    settings.update({"weights": args.weights, "data_dir": dataset.data_dir,
                     "val_dir": args.val_dir, "seed": args.seed,
                     "num_train": len(dataset.train_paths),
                     "num_val": len(dataset.val_paths), "batch_size": args.batch_size})
    if checkpoint_candidates(args.train_dir):
        _check_resumed_run(args, dataset, settings)
    try:
        os.makedirs(args.train_dir, exist_ok=True)
        atomic_write(os.path.join(args.train_dir, CLASSES_FILE),
                     "".join(n + "\n" for n in dataset.class_names))
        atomic_write(os.path.join(args.train_dir, RUN_FILE),
                     json.dumps(settings, indent=2) + "\n")
    except OSError as err:
        raise UsageError("--train-dir %r cannot be written: %s" % (args.train_dir,
                                                                  err)) from None


# What a killed or failed save can leave in a run's folders: TensorFlow's
# checkpoint temp files (a data or index file, or the state file, renamed only
# once complete) of the checkpoints and of the slim export's Saver, save_npy's
# export temp file and atomic_write's (run files, the slim export's JSON).
_TEMP_FILE_RE = re.compile(
    r"^((%s-\d+|%s)\.(index|data-\d+-of-\d+)\.tempstate\d+|checkpoint\.tmp[0-9a-f]+"
    r"|\.%s\..+\.tmp|(%s|%s|%s)\.tmp)$"
    % (re.escape(CKPT_NAME), re.escape(os.path.basename(SLIM_EXPORT_CHECKPOINT)),
       re.escape(os.path.basename(EXPORT_NAME)), re.escape(CLASSES_FILE),
       re.escape(RUN_FILE), re.escape(os.path.basename(SLIM_EXPORT_JSON))))


def remove_temp_files(train_dir):
    """Deletes the temp files a killed or failed save left in ``train_dir``.

    Only names matching the temp files the trainer's own writers create
    (``model.ckpt-N.data-*.tempstate*``, ``checkpoint.tmp*``, the slim export's
    ``slim-attention.ckpt.{index,data-*}.tempstate*`` and
    ``slim-attention.json.tmp``, the export's and run files' ``*.tmp``) in
    ``train_dir``, ``best/`` and ``export/``; nothing else.

    Returns:
      The removed paths.
    """
    removed = []
    for folder in (train_dir, os.path.join(train_dir, BEST_DIR),
                   os.path.dirname(os.path.join(train_dir, EXPORT_NAME))):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            if _TEMP_FILE_RE.match(name) and os.path.isfile(path):
                try:
                    os.remove(path)
                    removed.append(path)
                except OSError as err:
                    logger.warning("could not remove the temp file %s: %s", path, err)
    if removed:
        logger.info("removed %d temp file(s) left by an earlier save", len(removed))
    return removed
