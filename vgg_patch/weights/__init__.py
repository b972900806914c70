"""Safe, lazy reading and lean writing of tensorflow-vgg's ``vgg19.npy`` files.

tensorflow-vgg reads its weights with
``np.load(path, encoding='latin1', allow_pickle=True).item()``. The file is a
``.npy`` holding a pickled dict, and unpickling runs whatever the pickle asks
for. This module never calls ``np.load(allow_pickle=True)``:

* the ``.npy`` header is parsed with :mod:`numpy.lib.format`;
* the pickle payload is read by :class:`SafeUnpickler`, a subclass of the
  pure-Python ``pickle._Unpickler`` whose ``find_class`` allows only NumPy array
  reconstruction and ``numpy.dtype`` (plus ``_codecs.encode`` for latin-1, which
  protocol-2 pickles written by Python 3 use for bytes). Everything a weights
  file needs besides (dict, list, tuple, str, bytes, int, float) is built by
  pickle opcodes that call no global. Anything else is refused with
  :class:`WeightsFileError` before it runs;
* it is lazy: large ``BINSTRING``/``BINBYTES``/``BYTEARRAY8`` payloads are
  recorded as (file offset, length) and skipped, so parsing the full-size
  file reads a few kilobytes. Each array becomes a :class:`LazyArray` that reads
  its bytes only when asked (:meth:`LazyArray.read`), straight into one
  64-byte aligned float32 buffer that TensorFlow adopts without a copy;
* it is bounded by the file: every read is checked against the bytes left in
  the file before anything is allocated, dict keys can only be str, bytes or
  int (so nothing deep or shared is ever hashed, where CPython recurses in C),
  the unpickled tree is walked once per shared object with a depth limit, a
  payload backs at most one array, shapes are counted with Python ints, and
  :func:`load_weights` checks the memory it needs before reading. Parsing
  any file takes time and memory proportional to its size, and every failure
  is one :class:`WeightsFileError` line.

Formats understood (see :class:`WeightsFile`):

* the original Python-2 file, ``{'conv1_1': [W, b], ...}``;
* tensorflow-vgg's ``save_npy`` output, ``{'conv1_1': {0: W, 1: b}, ...}``;
* this package's ``save_npy`` output: the same ``{name: {0: W, 1: b}}``
  entries plus one entry per attention block, ``{'cbam_0': {'ChannelAttention/fc1/weights':
  array, ...}}`` (variable names relative to the block's scope, moving
  statistics included).

:func:`save_weights` writes such a dict with the standard pickle machinery
(protocol 5, arrays written from their own memory with no intermediate
``bytes`` copy), in a layout ``np.load(path, allow_pickle=True).item()`` still
reads, so tensorflow-vgg code keeps working with the files.

Modules (everything above is importable from ``vgg_patch.weights``):

* :mod:`~vgg_patch.weights.unpickle` -- the security boundary:
  :class:`SafeUnpickler` and its allow-list; with
  :mod:`~vgg_patch.weights.stand_ins`, what the allow-list hands a pickle.
  Reviewable alone.
* :mod:`~vgg_patch.weights.lazy` -- :class:`LazyArray`, aligned buffers,
  memory checks.
* :mod:`~vgg_patch.weights.file` -- :func:`read_npy_tree`,
  :class:`WeightsFile`, :func:`load_weights`.
* :mod:`~vgg_patch.weights.write` -- :func:`save_weights`.
* :mod:`~vgg_patch.weights.errors` -- :class:`WeightsFileError` and the
  text of its messages.

This package does not import TensorFlow.
"""
from vgg_patch.weights.errors import DOWNLOAD_URL, WeightsFileError
from vgg_patch.weights.file import WeightsFile, load_weights, read_npy_tree
from vgg_patch.weights.lazy import LazyArray, aligned_empty
from vgg_patch.weights.unpickle import LAZY_MIN_BYTES, MAX_DEPTH, SafeUnpickler
from vgg_patch.weights.write import save_weights

__all__ = ['WeightsFileError', 'LazyArray', 'WeightsFile', 'SafeUnpickler',
           'read_npy_tree', 'load_weights', 'save_weights', 'DOWNLOAD_URL',
           'LAZY_MIN_BYTES', 'MAX_DEPTH', 'aligned_empty']
