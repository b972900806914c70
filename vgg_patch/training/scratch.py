"""Temporary folders that do not outlive their process: a non-chief worker's demo images.

A folder made by :func:`make_dir` is removed when this process

* exits normally or by an exception (``atexit``; the trainer turns the first
  SIGINT/SIGTERM into a stop request, so those paths exit normally too);
* restarts itself with ``os.execve`` (``workers.restart_process`` calls
  :func:`remove_own` first: ``atexit`` does not run across ``execve``);
* receives SIGTERM while no other handler is installed (before or after the
  trainer's): the folder is removed, then the signal kills the process as
  it would have.

A process killed by SIGKILL (or by a second signal while blocked in
TensorFlow, after which a launcher sends SIGKILL) cannot clean up: its folder
is removed by the next :func:`make_dir` on this machine. The owner holds a
``flock`` on its folder for as long as it lives (the kernel releases it when
the process dies or execs), so a folder is removed only when no live process
holds it, whatever its pid namespace, and never in its first
:data:`STALE_AFTER_SECS` (the moment between creating and locking it).
"""
import atexit
import logging
import os
import shutil
import signal
import tempfile
import threading
import time

try:
    import fcntl
except ImportError:  # not POSIX: no lock, no sweeping of dead processes' folders
    fcntl = None

logger = logging.getLogger("vgg_patch.train")

__all__ = ["PREFIX", "STALE_AFTER_SECS", "make_dir", "remove_own", "remove_stale"]

#: Name prefix of the folders (a random suffix follows). "locked-" tells them from
#: older versions' unlocked ``vgg19-cbam-worker-XXXXXXXX`` folders, never swept.
PREFIX = "vgg19-cbam-worker-locked-"
#: A folder younger than this is never taken for a dead process's.
STALE_AFTER_SECS = 10.0

_OWN = {}  # path -> the locked directory's fd (or None)
_HOOKS = []


def make_dir(folder=None):
    """Creates a folder in ``folder`` (the temp dir by default), removed as the
    module docstring says; first removes dead processes' folders there.

    Returns:
      The new folder's path.
    """
    remove_stale(folder)
    path = tempfile.mkdtemp(prefix=PREFIX, dir=folder)
    fd = None
    if fcntl is not None:
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours: nobody else has it yet
    _OWN[path] = fd
    _install_hooks()
    return path


def remove_own():
    """Removes every folder this process made with :func:`make_dir`."""
    while _OWN:
        path, fd = _OWN.popitem()
        shutil.rmtree(path, ignore_errors=True)
        if fd is not None:
            os.close(fd)


def remove_stale(folder=None):
    """Removes the folders in ``folder`` (the temp dir by default) that no live
    process holds: those of processes killed before they could clean up.

    Returns:
      The paths removed.
    """
    if fcntl is None:
        return []
    folder = folder or tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(folder) if n.startswith(PREFIX)]
    except OSError:
        return []
    removed = []
    for name in names:
        path = os.path.join(folder, name)
        if path in _OWN or not _is_stale(path):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    if removed:
        logger.info("removed %d folder(s) left by killed workers in %s", len(removed), folder)
    return removed


def _is_stale(path):
    """True if ``path`` is an old enough folder whose lock nobody holds."""
    try:
        if time.time() - os.lstat(path).st_mtime < STALE_AFTER_SECS:
            return False
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:  # gone, not a folder, a link, or not ours to open
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a live process holds it
        return False
    finally:
        os.close(fd)  # releases the lock if we took it
    return True


def _install_hooks():
    if _HOOKS:
        return
    _HOOKS.append(atexit.register(remove_own))
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL):
        signal.signal(signal.SIGTERM, _remove_and_die)


def _remove_and_die(signum, frame):  # pylint: disable=unused-argument
    """SIGTERM's handler while no other is installed: clean up, then die by it."""
    remove_own()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
