"""Writing a weights file: :func:`save_weights`.

The standard pickle machinery (protocol 5), arrays written from their own
memory with no intermediate ``bytes`` copy and callables fetched one at a
time, in a layout ``np.load(path, allow_pickle=True).item()`` still reads.
"""
import os
import pickle
import tempfile

import numpy as np
from numpy.lib import format as npy_format

__all__ = ['save_weights', 'WeightsPickler']


class _ObjectScalar:
    """Pickles as the 0-d object array ``np.save`` makes of a dict."""

    def __init__(self, item):
        self.item = item


class WeightsPickler(pickle.Pickler):
    """Pickles arrays from their own memory (protocol 5, in-band) and fetches lazily.

    Callables among the leaves are called when their turn comes, so with
    ``fast`` (no memo) only one fetched array is alive at a time.
    """

    def reducer_override(self, obj):
        if isinstance(obj, _ObjectScalar):
            return (_np_reconstruct(), (np.ndarray, (0,), b'b'),
                    (1, (), np.dtype(object), False, [obj.item]))
        if isinstance(obj, _Deferred):
            obj = obj.fetch()
            if not isinstance(obj, np.ndarray):
                raise TypeError('a weights callable returned %s, expected an ndarray'
                                % type(obj).__name__)
        if isinstance(obj, np.ndarray):
            arr = np.ascontiguousarray(obj)
            view = pickle.PickleBuffer(memoryview(arr.reshape(-1)).cast('B').toreadonly())
            return (_np_reconstruct(), (np.ndarray, (0,), b'b'),
                    (1, arr.shape, arr.dtype, False, view))
        return NotImplemented


class _Deferred:
    """A leaf fetched only when the pickler reaches it."""

    def __init__(self, fetch):
        self.fetch = fetch


def _wrap_leaves(obj):
    if isinstance(obj, dict):
        return {k: _wrap_leaves(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_wrap_leaves(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return obj
    if callable(obj):
        return _Deferred(obj)
    raise TypeError('weights leaves must be arrays or callables, got %s' % type(obj).__name__)


def _np_reconstruct():
    """NumPy's own ``reconstruct`` (pickled by name; numpy 1.x and 2.x)."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    return multiarray._reconstruct  # pylint: disable=protected-access


def save_weights(path, tree):
    """Writes a weights dict as a pickled ``.npy``, atomically and lean.

    Leaves may be arrays or zero-argument callables returning arrays (called
    one at a time while writing, so only one is in memory at once). The file
    is written next to ``path`` and renamed onto it at the end, so a failure
    leaves any existing file untouched. ``np.load(path, allow_pickle=True).item()``
    reads the result (Python 3.8+), and so does :class:`WeightsFile`.

    Args:
      path: destination; written exactly as given (no '.npy' is appended).
      tree: ``{name: {0: W, 1: b}}`` and ``{block: {variable: array}}`` entries.

    Returns:
      ``path``.

    Raises:
      TypeError: tree is not a dict.
      OSError: the destination cannot be written.
    """
    if not isinstance(tree, dict):
        raise TypeError('tree must be a dict of layers, got %s' % type(tree).__name__)
    wrapped = _wrap_leaves(tree)  # checks the leaves' types before any file exists
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp',
                               dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            npy_format.write_array_header_1_0(
                f, {'descr': '|O', 'fortran_order': False, 'shape': ()})
            pickler = WeightsPickler(f, protocol=5)
            pickler.fast = True  # no memo: each fetched array is freed once written
            pickler.dump(_ObjectScalar(wrapped))
        # mkstemp creates the file 0600; give the export the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
