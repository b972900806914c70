"""Restoring a run's checkpoints; naming what a failed write lost.

A run resumes from the newest checkpoint that is complete and loads
(:func:`restore_latest`), never trusting TensorFlow's ``checkpoint`` state
file, which a kill may leave one save behind. A write that fails (a full disk)
ends the run with one line naming the file and the operating system's reason
(:func:`write_failed`).
"""
import errno
import logging
import os
import re

from vgg_patch.cli.common import TrainingFailed, UsageError
from vgg_patch.training.run_dir import checkpoint_candidates

logger = logging.getLogger("vgg_patch.train")

def _check_fits(prefix, saved, variables):
    """Refuses a readable checkpoint whose variables do not fit the graph."""
    for var in variables or ():
        name, shape = var.op.name, var.shape.as_list()
        if name not in saved:
            raise UsageError(
                "checkpoint %s was written with other options: it has no variable %s "
                "(changed --optimizer or --trainable-scopes?); resume with the "
                "original options or use another --train-dir" % (prefix, name))
        if list(saved[name]) != shape:
            raise UsageError(
                "checkpoint %s was written with other options: %s has shape %s, not "
                "%s (changed --image-size or the classes?); resume with the original "
                "options or use another --train-dir" % (prefix, name, saved[name],
                                                       shape))


def restore_latest(sess, saver, train_dir, variables=None):
    """Restores the newest checkpoint that loads, falling back to older ones.

    A checkpoint whose files are damaged (a kill mid-save, a full disk) is
    skipped with a warning. One that reads fine but does not fit the graph
    (written with other options) is an error, not silently skipped: starting
    over would throw the run away.

    Args:
      sess: the session.
      saver: a ``tf.compat.v1.train.Saver``.
      train_dir: the run's folder.
      variables: the variables the checkpoint must hold (names and shapes are
        checked before restoring); default: none checked.

    Returns:
      The restored prefix, or None if there is no usable checkpoint.

    Raises:
      UsageError: the newest readable checkpoint does not fit the graph.
    """
    import tensorflow as tf
    candidates = checkpoint_candidates(train_dir)
    for step, prefix in candidates:
        try:
            saved = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
        except (tf.errors.OpError, ValueError) as err:
            logger.warning("checkpoint %s does not load (%s); trying an older one",
                           prefix, str(err).splitlines()[0])
            continue
        _check_fits(prefix, saved, variables)
        try:
            saver.restore(sess, prefix)
        except (tf.errors.OpError, ValueError) as err:
            logger.warning("checkpoint %s does not load (%s); trying an older one",
                           prefix, str(err).splitlines()[0])
            continue
        # Let the saver manage (and eventually delete) the older ones.
        saver.recover_last_checkpoints([p for s_, p in sorted(candidates) if s_ <= step])
        return prefix
    return None


_REASON_RE = re.compile(r"^(?P<path>\S+?)(\.tempstate\d+)?; (?P<reason>[^;]+)$")


def write_failed(what, path, err, last_good):
    """The one-line ``TrainingFailed`` for a write that raised ``err``.

    Names the file (from the error when TensorFlow reports it, else ``path``),
    the operating system's reason (e.g. "No space left on device") and the
    last good checkpoint.

    Args:
      what: what was being written, e.g. ``'the checkpoint of step 6'``.
      path: the file or prefix being written.
      err: the ``OSError`` or ``tf.errors.OpError``.
      last_good: the last good checkpoint's prefix, or None.

    Returns:
      A ``TrainingFailed`` to raise.
    """
    reason = None
    if isinstance(err, OSError):
        path = err.filename or path
        reason = err.strerror or str(err)
    else:
        lines = [line.strip() for line in str(getattr(err, "message", err)).splitlines()]
        for line in lines:
            match = _REASON_RE.match(line)
            if match:
                path, reason = match.group("path"), match.group("reason").strip()
                break
        else:
            known = [os.strerror(e) for e in (errno.ENOSPC, errno.EIO, errno.EDQUOT,
                                              errno.EROFS, errno.EACCES, errno.ENOENT)]
            reason = next((k for k in known if any(k in line for line in lines)),
                          next((line for line in lines
                                if line and line != "Graph execution error:"),
                               type(err).__name__))
    return TrainingFailed("could not write %s %s: %s; the previous checkpoint %s is intact"
                          % (what, path, reason, last_good or "(none)"))
