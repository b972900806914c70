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
  recorded as (file offset, length) and skipped, so parsing a 548 MB file
  reads a few kilobytes. Each array becomes a :class:`LazyArray` that reads
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
"""
import io
import logging
import math
import os
import pickle
import re
import struct
import tempfile

import numpy as np
from numpy.lib import format as npy_format

logger = logging.getLogger(__name__)

__all__ = ['WeightsFileError', 'LazyArray', 'WeightsFile', 'SafeUnpickler',
           'read_npy_tree', 'load_weights', 'save_weights', 'DOWNLOAD_URL']

#: Where tensorflow-vgg's README links the ``vgg19.npy`` download.
DOWNLOAD_URL = 'https://github.com/machrisaa/tensorflow-vgg'

#: Payloads at least this large are recorded as file offsets instead of read.
LAZY_MIN_BYTES = 4096

#: Alignment TensorFlow needs to adopt a NumPy buffer without copying it.
_ALIGN = 64

#: Chunk used when a stored dtype must be converted to float32.
_CHUNK_BYTES = 16 << 20

#: Deepest nesting of containers a weights file may have (they have 5 levels).
MAX_DEPTH = 64

#: NumPy's limits on an array's rank and size in bytes.
_MAX_NDIM = 64
_MAX_NBYTES = 2 ** 63 - 1

#: Payloads at least this long may back only one array (shorter ones, such as
#: CPython's shared ``b''``, cannot multiply memory).
_SHARED_PAYLOAD_BYTES = 64

#: ``numpy.dtype`` codes a pickle may name ('f4', 'O8', 'V8', ...).
_DTYPE_CODE = re.compile(r'[A-Za-z][0-9]{0,4}\Z')

#: Longest name or value quoted in an error message.
_QUOTE_CHARS = 60


class WeightsFileError(ValueError):
    """A weights file is missing, corrupt, unsafe or does not fit the network."""


def _short(obj):
    """A short one-line description of ``obj`` for error messages.

    Never walks containers (a crafted file's lists can be deep or shared
    exponentially) and never formats huge ints (quadratic, and limited).
    """
    if isinstance(obj, (str, bytes)):
        text = repr(obj[:_QUOTE_CHARS])
        return text + ('... (%d long)' % len(obj) if len(obj) > _QUOTE_CHARS else '')
    if isinstance(obj, bool) or obj is None or isinstance(obj, float):
        return repr(obj)
    if isinstance(obj, int):
        return repr(obj) if obj.bit_length() <= 64 else 'an int of %d bits' % obj.bit_length()
    if isinstance(obj, (tuple, list, dict)):
        return 'a %s of %d items' % (type(obj).__name__, len(obj))
    if isinstance(obj, np.dtype):
        return 'dtype %s' % (obj.str,)
    return 'a %s' % type(obj).__name__


class _Refused(Exception):
    """Raised inside the unpickler for a global outside the allow-list."""

    def __init__(self, module, name):
        super().__init__(module, name)
        self.module = module
        self.name = name


# --------------------------------------------------------------------------
# Restricted, lazy unpickling
# --------------------------------------------------------------------------
class _Sealed:
    """Base of every object the unpickler hands out: ``BUILD`` cannot alter it."""

    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError('BUILD on %s' % (self,))


class _LazyBytes(_Sealed):
    """A payload left in the file: ``length`` bytes at ``offset``."""

    __slots__ = ('offset', 'length')

    def __init__(self, offset, length):
        self.offset = offset
        self.length = length


class _NdarrayClass(_Sealed):
    """Stands for ``numpy.ndarray`` in a pickle; calling it is refused."""

    __slots__ = ()

    def __repr__(self):
        return 'numpy.ndarray'


class _Global(_Sealed):
    """An allowed global: callable, but sealed against ``BUILD`` and attribute writes."""

    __slots__ = ('_fn',)

    def __init__(self, fn):
        object.__setattr__(self, '_fn', fn)

    def __call__(self, *args):
        return self._fn(*args)

    def __setattr__(self, name, value):
        raise pickle.UnpicklingError('setting %s on %r' % (name, self))

    def __repr__(self):
        return getattr(self._fn, '__name__', repr(self._fn))


_NDARRAY = _NdarrayClass()


class _ArrayStub:
    """What ``numpy.core.multiarray._reconstruct`` builds here: a record, no data.

    ``BUILD`` hands it ndarray's pickled state, which it checks and keeps.
    """

    def __init__(self):
        self.shape = None
        self.dtype = None
        self.fortran_order = False
        self.data = None  # bytes, _LazyBytes, or a list (object arrays)

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError('bad ndarray state: %s' % _short(state))
        if len(state) == 5:
            state = state[1:]
        shape, dtype, fortran_order, data = state
        self._set(shape, dtype, fortran_order, data)

    def _set(self, shape, dtype, fortran_order, data):
        if (not isinstance(shape, tuple) or len(shape) > _MAX_NDIM
                or not all(isinstance(d, int) and not isinstance(d, bool)
                           and 0 <= d <= _MAX_NBYTES for d in shape)):
            raise pickle.UnpicklingError('bad ndarray shape: %s' % _short(shape))
        if not isinstance(dtype, np.dtype):
            raise pickle.UnpicklingError('bad ndarray dtype: %s' % _short(dtype))
        count = math.prod(shape)  # Python ints: no overflow
        if count * max(dtype.itemsize, 1) > _MAX_NBYTES:
            raise pickle.UnpicklingError('an array of shape %s is larger than any file'
                                         % _shape_text(shape))
        if dtype.hasobject:
            if not isinstance(data, list) or len(data) != count:
                raise pickle.UnpicklingError('bad object array payload')
        else:
            if dtype.fields is not None or dtype.subdtype is not None:
                raise pickle.UnpicklingError('structured dtype %s' % dtype)
            if isinstance(data, str):
                data = data.encode('latin1')  # Python 2 str read as latin-1
            if isinstance(data, (bytes, bytearray)):
                length = len(data)
            elif isinstance(data, _LazyBytes):
                length = data.length
            else:
                raise pickle.UnpicklingError('bad ndarray payload: %s' % _short(data))
            if length != count * dtype.itemsize:
                raise pickle.UnpicklingError(
                    'array payload of %d bytes, expected %d for shape %s %s'
                    % (length, count * dtype.itemsize, _shape_text(shape), dtype.str))
        self.shape = shape
        self.dtype = dtype
        self.fortran_order = bool(fortran_order)
        self.data = data


def _reconstruct(cls, shape, dtype_code):
    """Safe stand-in for ``numpy.core.multiarray._reconstruct``."""
    del shape, dtype_code  # numpy passes (0,), b'b': placeholders only
    if cls is not _NDARRAY:
        raise pickle.UnpicklingError('_reconstruct of %s' % _short(cls))
    return _ArrayStub()


def _frombuffer(buf, dtype, shape, order):
    """Safe stand-in for ``numpy.core.numeric._frombuffer`` (protocol-5 arrays)."""
    stub = _ArrayStub()
    if isinstance(buf, pickle.PickleBuffer):
        buf = bytes(buf)
    stub._set(tuple(shape), dtype, order == 'F', buf)
    return stub


def _shape_text(shape):
    """A shape for messages: at most 8 dimensions, each formatted only if it is small."""
    dims = ', '.join(_short(d) for d in shape[:8])
    return '(%s%s)' % (dims, ', ... %d dimensions' % len(shape) if len(shape) > 8 else '')


def _latin1_encode(obj, encoding='utf-8', errors='strict'):
    """``_codecs.encode`` limited to latin-1 (Python 3's protocol-2 bytes)."""
    if (not isinstance(obj, str) or not isinstance(encoding, str)
            or encoding.replace('-', '').lower() not in ('latin1', 'iso88591')):
        raise pickle.UnpicklingError('_codecs.encode(%s, %s)' % (_short(obj), _short(encoding)))
    if errors != 'strict':  # pickle never writes another handler; others may not exist
        raise pickle.UnpicklingError('_codecs.encode with error handler %s' % _short(errors))
    try:
        return obj.encode('latin1')
    except UnicodeEncodeError:
        raise pickle.UnpicklingError('_codecs.encode of text that is not latin-1') from None


def _dtype(code, align=False, copy=True):
    """Safe stand-in for ``numpy.dtype``: a fresh dtype from a plain type code.

    Always a copy: ``BUILD`` then sets the copy's byte order, never that of
    NumPy's shared built-in dtype.
    """
    del copy
    if not isinstance(code, str) or not _DTYPE_CODE.match(code):
        raise pickle.UnpicklingError('numpy.dtype(%s)' % _short(code))
    if align not in (0, 1):
        raise pickle.UnpicklingError('numpy.dtype(align=%s)' % _short(align))
    return np.dtype(code, align=bool(align), copy=True)


def _dtype_state(dtype, state):
    """Checks a dtype's pickled state; returns the sanitized state NumPy may apply.

    Only plain dtypes (no fields, no subarray) are accepted; the flags are the
    dtype's own, whatever the file says.
    """
    if (not isinstance(state, tuple) or len(state) not in (8, 9)
            or state[0] not in (3, 4) or state[1] not in ('<', '>', '|', '=')
            or any(item is not None for item in state[2:5])
            or not all(type(v) is int for v in state[5:8])  # pylint: disable=unidiomatic-typecheck
            or (len(state) == 9 and state[8] is not None)):
        raise pickle.UnpicklingError('bad dtype state: %s' % _short(state))
    elsize, alignment = state[5], state[6]
    if not -1 <= elsize < 2 ** 31 or alignment not in (-1, 1, 2, 4, 8, 16):
        raise pickle.UnpicklingError('bad dtype state: size %s, alignment %s'
                                     % (_short(elsize), _short(alignment)))
    if elsize >= 0 and dtype.kind not in 'VSU':
        elsize = -1  # only flexible dtypes take their size from the state
    return (3, state[1], None, None, None, elsize, alignment, dtype.flags)


_ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): _Global(_reconstruct),
    ('numpy._core.multiarray', '_reconstruct'): _Global(_reconstruct),
    ('numpy.core.numeric', '_frombuffer'): _Global(_frombuffer),
    ('numpy._core.numeric', '_frombuffer'): _Global(_frombuffer),
    ('numpy', 'ndarray'): _NDARRAY,
    ('numpy', 'dtype'): _Global(_dtype),
    ('_codecs', 'encode'): _Global(_latin1_encode),
}


def _past_end(length):
    return EOFError('a length of %d bytes runs past the end of the file' % length)


class _BoundedReader:
    """A file whose reads never ask for more than the file holds (NumPy's header parser).

    ``file.read(n)`` allocates ``n`` bytes before reading; a ``.npy`` 2.0
    header may say it is 4 GB long. Reading past the end raises EOFError.
    """

    def __init__(self, raw, size):
        self._raw = raw
        self._size = size

    def read(self, n=-1):
        left = self._size - self._raw.tell()
        if n is None or n < 0:
            n = left
        elif n > left:
            raise _past_end(n)
        return self._raw.read(n)


def _check_key(key):
    """Refuses dict keys a weights file never has, before they are hashed.

    Hashing a tuple recurses in C without a depth check (a tuple nested 200,000
    deep crashes the interpreter) and takes time exponential in its shared
    structure; crafted ints and floats collide. Layer names are str (bytes in
    Python 2 files read without decoding) and layer indexes small ints.
    """
    kind = type(key)
    if kind is str or kind is bytes or (kind is int and -2 ** 63 <= key < 2 ** 63):
        return key
    raise pickle.UnpicklingError('a dict key of type %s (%s); weights files have str or '
                                 'int keys' % (kind.__name__, _short(key)))


class SafeUnpickler(pickle._Unpickler):  # pylint: disable=protected-access
    """Unpickles weights files: NumPy arrays and plain containers only, lazily.

    ``find_class`` is the single gate through which a pickle reaches code; it
    returns safe stand-ins for NumPy's array reconstruction and ``numpy.dtype``
    and raises for every other global, so nothing a crafted file names runs.
    Arrays come back as :class:`_ArrayStub` records whose large payloads stay
    in the file (see the module docstring); :func:`read_npy_tree` turns them
    into :class:`LazyArray`.

    Its work is bounded by the file: every length is checked against the bytes
    left before it is read, dict keys must be str, bytes or int, sets are
    refused, ``BUILD`` applies only to arrays and (checked) dtypes, and MARKs
    and containers nested deeper than :data:`MAX_DEPTH` are refused as they
    are built.

    Args:
      file: a binary file object positioned at the pickle's first byte.
      lazy_min_bytes: payloads at least this large (and outside a protocol-4
        frame) are recorded as offsets instead of read; None reads everything.
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # pylint: disable=protected-access

    def __init__(self, file, lazy_min_bytes=LAZY_MIN_BYTES):
        super().__init__(file, encoding='latin1')
        self._source = file
        position = file.tell()
        self._size = file.seek(0, io.SEEK_END)  # lengths are checked against it
        file.seek(position)
        self._lazy_min_bytes = lazy_min_bytes
        self._depths = {}  # id -> (container, depth) for containers holding containers

    def find_class(self, module, name):
        """Returns the allowed stand-in for ``module.name``, else refuses it."""
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(module, name) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError('persistent id %s' % _short(pid))

    def _in_frame(self):
        """Whether the next bytes come from a protocol-4 frame (already in memory)."""
        unframer = getattr(self, '_unframer', None)  # pickle.py's protocol-4 frame reader
        frame = getattr(unframer, 'current_frame', None)
        if frame is None:
            return False
        position = frame.tell()
        end = frame.seek(0, io.SEEK_END)
        frame.seek(position)
        if position < end:
            return True
        unframer.current_frame = None  # as _Unframer.read does at a frame's end
        return False

    def _check_left(self, length):
        """Refuses a length beyond the file's remaining bytes before it is read or
        sought (``file.read(n)`` allocates ``n`` bytes first; lseek fails with EINVAL)."""
        if length > self._size - self._source.tell():
            raise _past_end(length)

    def _payload(self, length):
        """Reads ``length`` bytes, or records them as a :class:`_LazyBytes`."""
        if (self._in_frame() or self._lazy_min_bytes is None
                or length < self._lazy_min_bytes):
            return self._exact(length)
        self._check_left(length)
        offset = self._source.tell()
        self._source.seek(offset + length)
        return _LazyBytes(offset, length)

    def _exact(self, length):
        """Reads exactly ``length`` bytes (from the frame, or checked against the file)."""
        if not self._in_frame():
            self._check_left(length)
        data = self.read(length)
        if len(data) != length:
            raise EOFError('payload runs past the end of the file')
        return data

    def _length(self, fmt, size):
        raw = self.read(size)
        if len(raw) != size:
            raise EOFError('length runs past the end of the file')
        (length,) = struct.unpack(fmt, raw)
        if length < 0:
            raise pickle.UnpicklingError('negative length')
        return length

    def _line(self):
        line = self.readline()
        if not line.endswith(b'\n'):
            raise EOFError('a global name runs past the end of the file')
        return line[:-1].decode('utf-8')

    def load_global(self):
        module = self._line()
        name = self._line()
        self.append(self.find_class(module, name))
    dispatch[pickle.GLOBAL[0]] = load_global

    def load_inst(self):
        module = self._line()
        name = self._line()
        self._instantiate(self.find_class(module, name), self.pop_mark())
    dispatch[pickle.INST[0]] = load_inst

    def load_binstring(self):
        data = self._payload(self._length('<i', 4))
        self.append(data if isinstance(data, _LazyBytes) else self._decode_string(data))
    dispatch[pickle.BINSTRING[0]] = load_binstring

    def load_short_binstring(self):
        data = self._exact(self._length('<B', 1))
        self.append(self._decode_string(data))
    dispatch[pickle.SHORT_BINSTRING[0]] = load_short_binstring

    def load_binbytes(self):
        self.append(self._payload(self._length('<I', 4)))
    dispatch[pickle.BINBYTES[0]] = load_binbytes

    def load_short_binbytes(self):
        self.append(self._exact(self._length('<B', 1)))
    dispatch[pickle.SHORT_BINBYTES[0]] = load_short_binbytes

    def load_binbytes8(self):
        self.append(self._payload(self._length('<Q', 8)))
    dispatch[pickle.BINBYTES8[0]] = load_binbytes8

    def load_bytearray8(self):
        data = self._payload(self._length('<Q', 8))
        self.append(data if isinstance(data, _LazyBytes) else bytearray(data))
    dispatch[pickle.BYTEARRAY8[0]] = load_bytearray8

    def load_binunicode(self):
        self.append(str(self._exact(self._length('<I', 4)), 'utf-8', 'surrogatepass'))
    dispatch[pickle.BINUNICODE[0]] = load_binunicode

    def load_binunicode8(self):
        self.append(str(self._exact(self._length('<Q', 8)), 'utf-8', 'surrogatepass'))
    dispatch[pickle.BINUNICODE8[0]] = load_binunicode8

    def load_long4(self):
        self.append(pickle.decode_long(self._exact(self._length('<i', 4))))
    dispatch[pickle.LONG4[0]] = load_long4

    def load_frame(self):
        length = self._length('<Q', 8)
        if not self._in_frame():  # else pickle refuses a frame inside a frame
            self._check_left(length)
        self._unframer.load_frame(length)
    dispatch[pickle.FRAME[0]] = load_frame

    # Nesting: refused as soon as it gets deeper than a weights file's. The
    # depth recorded for a container is a lower bound (a container changed
    # after it was put into another does not update the other), so what this
    # refuses is too deep; what it misses, the tree walk refuses.
    def load_mark(self):
        if len(self.metastack) >= MAX_DEPTH:
            raise pickle.UnpicklingError('MARKs nested more than %d deep' % MAX_DEPTH)
        super().load_mark()
    dispatch[pickle.MARK[0]] = load_mark

    def _grow(self, container, items):
        """Records that ``container`` now holds ``items``; refuses it past MAX_DEPTH."""
        depths = self._depths
        depth = 1 + max((depths.get(id(item), (None, 1))[1] for item in items
                         if isinstance(item, (tuple, list, dict))), default=0)
        if depth > depths.get(id(container), (None, 1))[1]:
            if depth > MAX_DEPTH:
                raise pickle.UnpicklingError('%ss nested more than %d deep'
                                             % (type(container).__name__, MAX_DEPTH))
            depths[id(container)] = (container, depth)
        return container

    def _push_tuple(self, items):
        self.append(self._grow(tuple(items), items))

    def load_list(self):
        items = self.pop_mark()
        self.append(self._grow(items, items))
    dispatch[pickle.LIST[0]] = load_list

    def load_append(self):
        value = self.stack.pop()
        target = self.stack[-1]
        if type(target) is not list:  # pylint: disable=unidiomatic-typecheck
            raise pickle.UnpicklingError('APPEND to %s' % _short(target))
        target.append(value)
        self._grow(target, (value,))
    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not list:  # pylint: disable=unidiomatic-typecheck
            raise pickle.UnpicklingError('APPENDS to %s' % _short(target))
        target.extend(items)
        self._grow(target, items)
    dispatch[pickle.APPENDS[0]] = load_appends

    def load_tuple(self):
        self._push_tuple(self.pop_mark())
    dispatch[pickle.TUPLE[0]] = load_tuple

    def _tuple_of_top(self, count):
        items = self.stack[-count:]
        if len(items) != count:
            raise pickle.UnpicklingError('TUPLE%d on a stack of %d' % (count, len(items)))
        del self.stack[-count:]
        self._push_tuple(items)

    def load_tuple1(self):
        self._tuple_of_top(1)
    dispatch[pickle.TUPLE1[0]] = load_tuple1

    def load_tuple2(self):
        self._tuple_of_top(2)
    dispatch[pickle.TUPLE2[0]] = load_tuple2

    def load_tuple3(self):
        self._tuple_of_top(3)
    dispatch[pickle.TUPLE3[0]] = load_tuple3

    # Containers: keys are checked before they are hashed; sets never occur.
    def load_dict(self):
        items = self.pop_mark()
        if len(items) % 2:
            raise pickle.UnpicklingError('DICT with an odd number of items')
        value = {_check_key(items[i]): items[i + 1] for i in range(0, len(items), 2)}
        self.append(self._grow(value, items[1::2]))
    dispatch[pickle.DICT[0]] = load_dict

    def load_setitem(self):
        value = self.stack.pop()
        key = self.stack.pop()
        target = self.stack[-1]
        if type(target) is not dict:  # pylint: disable=unidiomatic-typecheck
            raise pickle.UnpicklingError('SETITEM on %s' % _short(target))
        target[_check_key(key)] = value
        self._grow(target, (value,))
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not dict or len(items) % 2:  # pylint: disable=unidiomatic-typecheck
            raise pickle.UnpicklingError('SETITEMS on %s with %d items'
                                         % (_short(target), len(items)))
        for i in range(0, len(items), 2):
            target[_check_key(items[i])] = items[i + 1]
        self._grow(target, items[1::2])
    dispatch[pickle.SETITEMS[0]] = load_setitems

    def load_set(self):
        raise pickle.UnpicklingError('a set; weights files hold none')
    for _opcode in (pickle.EMPTY_SET, pickle.ADDITEMS, pickle.FROZENSET):
        dispatch[_opcode[0]] = load_set
    del _opcode

    def load_build(self):
        state = self.stack.pop()
        target = self.stack[-1]
        if isinstance(target, _ArrayStub):
            target.__setstate__(state)
        elif type(target) is np.dtype or isinstance(target, np.dtype):
            target.__setstate__(_dtype_state(target, state))
        else:
            raise pickle.UnpicklingError('BUILD on %s' % _short(target))
    dispatch[pickle.BUILD[0]] = load_build


# --------------------------------------------------------------------------
# Lazy arrays
# --------------------------------------------------------------------------
def aligned_empty(shape, dtype=np.float32):
    """An uninitialised C-ordered array whose data is 64-byte aligned.

    TensorFlow wraps such a buffer in a tensor without copying it, and a
    resource variable's initializer then adopts that tensor's buffer.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + _ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % _ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)


class LazyArray:
    """An array inside a weights file, read on demand.

    Attributes:
      path: the file.
      shape: the array's shape (tuple).
      dtype: the dtype stored in the file.
    """

    def __init__(self, path, stat_key, stub):
        self.path = path
        self.shape = stub.shape
        self.dtype = stub.dtype
        self._stat_key = stat_key
        self._fortran = stub.fortran_order
        self._data = stub.data

    @property
    def nbytes(self):
        """Size of the stored payload in bytes."""
        return math.prod(self.shape) * self.dtype.itemsize

    @property
    def read_nbytes(self):
        """Memory :meth:`read` allocates for the result (float32), in bytes."""
        return math.prod(self.shape) * 4

    def __repr__(self):
        return 'LazyArray(%r, shape=%s, dtype=%s)' % (self.path, _shape_text(self.shape),
                                                       self.dtype)

    def read(self):
        """Reads the array as float32 into a fresh 64-byte aligned buffer.

        float16/float64 and big-endian payloads are converted chunk by chunk,
        so at most one float32 copy of the array exists at any time.

        Returns:
          A C-contiguous float32 ndarray of :attr:`shape`.

        Raises:
          WeightsFileError: the dtype is not floating point, or the file was
            changed, truncated or removed since it was parsed.
        """
        if self.dtype.kind != 'f':
            raise WeightsFileError(
                '%s: an array of shape %s has dtype %s; weights must be floating point'
                % (self.path, _shape_text(self.shape), self.dtype))
        _check_memory(self.path, self.read_nbytes, 'an array of shape %s' % _shape_text(self.shape))
        try:
            out = aligned_empty(self.shape, np.float32)
            if isinstance(self._data, _LazyBytes):
                self._read_from_file(out)
            else:
                src = np.frombuffer(self._data, dtype=self.dtype)
                src = src.reshape(self.shape, order='F' if self._fortran else 'C')
                out[...] = src
        except MemoryError:
            raise WeightsFileError('%s: not enough memory to read an array of shape %s (%s)'
                                   % (self.path, _shape_text(self.shape),
                                      _size_text(self.read_nbytes))) from None
        return out

    def _read_from_file(self, out):
        try:
            try:
                stat = os.stat(self.path)
            except FileNotFoundError:
                raise WeightsFileError(
                    '%s was removed after the network was built from it; put it back or '
                    'build the network again' % self.path) from None
            if _stat_key(stat) != self._stat_key:
                raise WeightsFileError(
                    '%s changed since the network was built from it; build the '
                    'network again (or restore a checkpoint)' % self.path)
            with open(self.path, 'rb', buffering=0) as f:
                f.seek(self._data.offset)
                native = self.dtype == np.dtype('<f4') or self.dtype == np.dtype('=f4')
                if native and not self._fortran:
                    _readinto(f, memoryview(out.reshape(-1)).cast('B'), self.path)
                elif self._fortran:
                    raw = np.empty(self.shape[::-1], dtype=self.dtype)
                    _readinto(f, memoryview(raw.reshape(-1)).cast('B'), self.path)
                    out[...] = raw.T
                else:
                    flat = out.reshape(-1)
                    step = max(1, _CHUNK_BYTES // self.dtype.itemsize)
                    chunk = np.empty(step, dtype=self.dtype)
                    for start in range(0, flat.size, step):
                        part = chunk[:min(step, flat.size - start)]
                        _readinto(f, memoryview(part).cast('B'), self.path)
                        flat[start:start + part.size] = part
        except OSError as e:
            raise WeightsFileError('%s: cannot read weights (%s); download it again from %s'
                                   % (self.path, e.strerror or e, DOWNLOAD_URL)) from None


def _size_text(nbytes):
    for unit, scale in (('TB', 1e12), ('GB', 1e9), ('MB', 1e6), ('kB', 1e3)):
        if nbytes >= scale:
            return '%.1f %s' % (nbytes / scale, unit)
    return '%d bytes' % nbytes


def _memory_limit():
    """Bytes this process could ever hold: RAM plus swap, or its address-space limit.

    Returns None where neither is known.
    """
    limits = []
    try:
        import resource  # pylint: disable=import-outside-toplevel
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    except (ImportError, OSError, ValueError):
        pass
    try:
        with open('/proc/meminfo') as f:
            info = {line.split(':')[0]: line.split()[1] for line in f if ':' in line}
        limits.append((int(info['MemTotal']) + int(info.get('SwapTotal', 0))) * 1024)
    except (OSError, KeyError, ValueError, IndexError):
        try:
            limits.append(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))
        except (ValueError, OSError, AttributeError):
            pass
    return min(limits) if limits else None


def _check_memory(path, nbytes, what):
    """Refuses, before allocating, a read that could never fit in memory."""
    limit = _memory_limit()
    if limit is not None and nbytes > limit:
        raise WeightsFileError('%s: %s needs %s of memory, more than this process can have '
                               '(%s)' % (path, what, _size_text(nbytes), _size_text(limit)))


def _readinto(f, view, path):
    done = 0
    while done < len(view):
        n = f.readinto(view[done:])
        if not n:
            raise WeightsFileError(
                '%s is truncated (it ended %d bytes early); download it again from %s'
                % (path, len(view) - done, DOWNLOAD_URL))
        done += n


def _stat_key(stat):
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev)


# --------------------------------------------------------------------------
# Reading a file
# --------------------------------------------------------------------------
def _first_line(error):
    lines = str(error).splitlines()
    line = lines[0] if lines else ''
    return line if len(line) <= 200 else line[:200] + '...'


def _corrupt(path, detail):
    return WeightsFileError(
        '%s is truncated or corrupt (%s); download it again from %s'
        % (path, detail, DOWNLOAD_URL))


def read_npy_tree(path):
    """Safely parses a pickled ``.npy`` file into plain containers of :class:`LazyArray`.

    No array data is read (beyond payloads under 4 KiB). A 0-d object array
    (what ``np.save`` makes of a dict) is unwrapped, as ``.item()`` would.

    Args:
      path: the ``.npy`` file.

    Returns:
      The unpickled object: dicts, lists, tuples, str, bytes, int, float and
      :class:`LazyArray` leaves.

    Raises:
      WeightsFileError: the file is missing, unreadable, not a ``.npy``,
        truncated or corrupt, or its pickle asks for anything beyond NumPy
        arrays and plain containers (then nothing it names has run).
    """
    path = os.fspath(path)
    try:
        f = open(path, 'rb')
    except FileNotFoundError:
        raise WeightsFileError(
            '%s: no such weights file; tensorflow-vgg\'s README (%s) links the '
            'vgg19.npy download' % (path, DOWNLOAD_URL)) from None
    except OSError as e:
        raise WeightsFileError('%s: cannot open weights file (%s)'
                               % (path, e.strerror or e)) from None
    with f:
        stat = os.fstat(f.fileno())
        stat_key = _stat_key(stat)
        header = _BoundedReader(f, stat.st_size)
        try:
            version = npy_format.read_magic(header)
            if version == (1, 0):
                shape, fortran_order, dtype = npy_format.read_array_header_1_0(header)
            elif version in ((2, 0), (3, 0)):
                shape, fortran_order, dtype = npy_format.read_array_header_2_0(header)
            else:
                raise ValueError('unsupported .npy version %s' % (version,))
        except Exception as e:  # pylint: disable=broad-except
            # NumPy's header parser ran on the file's text: whatever it raised
            # (ValueError, SyntaxError, tokenize.TokenError, ...) means corrupt.
            raise _corrupt(path, 'not a readable .npy header: %s: %s'
                           % (type(e).__name__, _first_line(e))) from None
        if not dtype.hasobject:
            raise WeightsFileError(
                '%s holds a %s array of shape %s, not a pickled dict of layers '
                "{'conv1_1': [W, b], ...}" % (path, dtype, _shape_text(shape)))
        unpickler = SafeUnpickler(f)
        try:
            tree = unpickler.load()
        except _Refused as e:
            raise WeightsFileError(
                "%s: refused to unpickle it: it asks for '%s.%s', which a weights "
                'file never needs (only NumPy arrays and dtypes, dict, list, tuple, '
                'str, bytes, int and float are allowed); nothing it names was run'
                % (path, _quoted(e.module), _quoted(e.name))) from None
        except (EOFError, struct.error) as e:
            raise _corrupt(path, 'the pickle ends early: %s'
                           % (_first_line(e) or 'end of file')) from None
        except Exception as e:  # pylint: disable=broad-except
            # Only pickle's opcodes and this module's stand-ins ran: whatever
            # they raised (UnpicklingError, NumPy's errors, TypeError, ...)
            # means the pickle is not a weights file.
            raise _corrupt(path, 'bad pickle: %s: %s'
                           % (type(e).__name__, _first_line(e))) from None
    return _Resolver(path, stat_key).resolve(tree)


def _quoted(name):
    """A global's name for a message: as written when printable, else escaped and cut."""
    if name.isprintable() and len(name) <= _QUOTE_CHARS:
        return name
    return _short(name)


class _Resolver:
    """Turns the unpickled tree into plain containers of :class:`LazyArray`.

    Shared objects (pickle's memo) are resolved once and stay shared, so the
    walk takes time proportional to the pickle, not to the tree it describes
    (a "billion laughs" file describes 2**30 lists in a few hundred bytes).
    Nesting is limited to :data:`MAX_DEPTH`, cycles are refused, and a payload
    may back only one array, so the arrays' total size is bounded by the file.
    """

    def __init__(self, path, stat_key):
        self.path = path
        self.stat_key = stat_key
        self.done = {}  # id -> (original, resolved): keeps ids valid
        self.active = set()
        self.payloads = set()

    def resolve(self, tree):
        if (isinstance(tree, _ArrayStub) and tree.dtype is not None and tree.dtype.hasobject
                and tree.shape == ()):
            tree = tree.data[0]  # np.save's 0-d object array around the dict: .item()
        return self._walk(tree, 1)

    def _walk(self, obj, depth):
        if obj is None or isinstance(obj, (str, bytes, int, float)):
            return obj
        key = id(obj)
        hit = self.done.get(key)
        if hit is not None:
            return hit[1]
        if depth > MAX_DEPTH:
            raise _corrupt(self.path, 'containers nested more than %d deep' % MAX_DEPTH)
        if key in self.active:
            raise _corrupt(self.path, 'a %s that contains itself' % type(obj).__name__)
        self.active.add(key)
        out = self._convert(obj, depth)
        self.active.discard(key)
        self.done[key] = (obj, out)
        return out

    def _convert(self, obj, depth):
        path = self.path
        if isinstance(obj, _ArrayStub):
            if obj.dtype is None:
                raise _corrupt(path, 'an array without state')
            if obj.dtype.hasobject:
                raise WeightsFileError('%s: holds an object array of shape %s; weights '
                                       'must be numeric arrays' % (path, _shape_text(obj.shape)))
            length = obj.data.length if isinstance(obj.data, _LazyBytes) else len(obj.data)
            if length >= _SHARED_PAYLOAD_BYTES:
                if id(obj.data) in self.payloads:
                    raise _corrupt(path, 'two arrays share one payload')
                self.payloads.add(id(obj.data))
            return LazyArray(path, self.stat_key, obj)
        if type(obj) is dict:  # pylint: disable=unidiomatic-typecheck
            return {self._walk(k, depth + 1): self._walk(v, depth + 1) for k, v in obj.items()}
        if type(obj) is list:  # pylint: disable=unidiomatic-typecheck
            return [self._walk(v, depth + 1) for v in obj]
        if type(obj) is tuple:  # pylint: disable=unidiomatic-typecheck
            return tuple(self._walk(v, depth + 1) for v in obj)
        if isinstance(obj, _LazyBytes):
            raise WeightsFileError('%s: holds a large bare bytes object; expected '
                                   'a dict of arrays' % path)
        if isinstance(obj, (_Sealed, np.dtype)):
            raise _corrupt(path, 'a stray %s' % (obj,))
        raise _corrupt(path, 'a stray %s' % _short(obj))


def _is_name(name):
    """Whether a key can name a layer or variable (and be quoted in a one-line message)."""
    return 0 < len(name) <= 256 and name.isprintable()


def _names_text(names, most=40):
    names = sorted(names)
    more = ' and %d more' % (len(names) - most) if len(names) > most else ''
    return ', '.join(names[:most]) + more


class WeightsFile:
    """A parsed weights file: layers and attention blocks, as :class:`LazyArray`.

    Attributes:
      path: the file.
      format: ``'original'`` (``{name: [W, b]}``, tensorflow-vgg's download)
        or ``'indexed'`` (``{name: {0: W, 1: b}}``, tensorflow-vgg's and this
        package's ``save_npy``).
      layers: ``{layer name: {index: LazyArray}}`` (0: weights, 1: biases).
      blocks: ``{block key: {variable name within the block: LazyArray}}``
        (attention blocks saved by this package, e.g. ``'cbam_0'``).

    Args:
      path: the ``.npy`` file.

    Raises:
      WeightsFileError: see :func:`read_npy_tree`; also when the content is
        not a dict of layers.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        tree = read_npy_tree(self.path)
        if not isinstance(tree, dict):
            raise WeightsFileError(
                "%s holds a %s, not a dict of layers {'conv1_1': [W, b], ...}"
                % (self.path, type(tree).__name__))
        self.layers = {}
        self.blocks = {}
        formats = set()
        for name, value in tree.items():
            if isinstance(name, bytes):
                name = name.decode('latin1')
            if not isinstance(name, str) or not _is_name(name):
                raise self._not_layers('a key %s that is not a layer name' % _short(name))
            if isinstance(value, (list, tuple)):
                entries = dict(enumerate(value))
                formats.add('original')
            elif isinstance(value, dict) and value and all(
                    isinstance(k, int) and not isinstance(k, bool) for k in value):
                entries = dict(value)
                formats.add('indexed')
            elif isinstance(value, dict) and value and all(
                    isinstance(k, str) and _is_name(k) for k in value):
                entries = dict(value)
                if not all(isinstance(v, LazyArray) for v in entries.values()):
                    raise self._not_layers("block '%s' holding non-arrays" % name)
                self.blocks[name] = entries
                continue
            else:
                raise self._not_layers("entry '%s' is a %s" % (name, type(value).__name__))
            if not all(isinstance(v, LazyArray) for v in entries.values()):
                raise self._not_layers("layer '%s' holding non-arrays" % name)
            self.layers[name] = entries
        if not self.layers:
            raise self._not_layers('no layers')
        self.format = 'original' if formats == {'original'} else 'indexed'

    def _not_layers(self, detail):
        return WeightsFileError(
            "%s is not a dict of layers {'conv1_1': [W, b], ...}: %s" % (self.path, detail))

    def array(self, layer, index, expected_shape):
        """Returns layer ``layer``'s array ``index`` (0 weights, 1 biases), shape-checked.

        Args:
          layer: layer name, e.g. 'conv1_1'.
          index: 0 for the weights, 1 for the biases.
          expected_shape: the shape the network needs.

        Returns:
          A :class:`LazyArray`.

        Raises:
          WeightsFileError: the layer or the array is missing, or its shape or
            dtype is not what the network needs.
        """
        if layer not in self.layers:
            raise WeightsFileError(
                "%s: layer '%s' is missing (the file has %s); is it a VGG19 weights file?"
                % (self.path, layer, _names_text(self.layers) or 'no layers'))
        entries = self.layers[layer]
        if index not in entries:
            raise WeightsFileError("%s: layer '%s' has no %s (index %d)"
                                   % (self.path, layer, ('weights', 'biases')[index], index))
        return self._check(entries[index], "layer '%s' %s" % (layer, ('weights', 'biases')[index]),
                           expected_shape)

    def block_array(self, block, name, expected_shape):
        """Returns variable ``name`` of attention block ``block``, shape-checked.

        Raises:
          WeightsFileError: the variable is missing or has another shape.
        """
        entries = self.blocks[block]
        if name not in entries:
            raise WeightsFileError(
                "%s: attention block '%s' has no variable '%s' (it has %s)"
                % (self.path, block, name, _names_text(entries)))
        return self._check(entries[name], "attention block '%s' variable '%s'" % (block, name),
                           expected_shape)

    def _check(self, array, what, expected_shape):
        expected = tuple(int(d) for d in expected_shape)
        if tuple(array.shape) != expected:
            raise WeightsFileError('%s: wrong shape for %s: found %s, expected %s'
                                   % (self.path, what, list(array.shape), list(expected)))
        if array.dtype.kind != 'f':
            raise WeightsFileError('%s: %s has dtype %s, expected floating point'
                                   % (self.path, what, array.dtype))
        if array.dtype != np.float32:
            logger.info('%s: %s is %s; converting to float32', self.path, what, array.dtype)
        return array


def load_weights(path):
    """Safely reads a whole weights file into memory, like tensorflow-vgg's ``data_dict``.

    The drop-in for ``np.load(path, encoding='latin1', allow_pickle=True).item()``.

    Args:
      path: the ``.npy`` file.

    Returns:
      ``{layer: [weights, biases]}`` as float32 arrays, plus
      ``{block: {variable: array}}`` entries for attention blocks.

    Raises:
      WeightsFileError: see :class:`WeightsFile`.
    """
    wf = WeightsFile(path)
    arrays = {}  # id -> (LazyArray, ndarray or None): a shared array is read once
    for entries in list(wf.layers.values()) + list(wf.blocks.values()):
        for lazy in entries.values():
            arrays.setdefault(id(lazy), [lazy, None])
    _check_memory(wf.path, sum(lazy.read_nbytes for lazy, _ in arrays.values()),
                  'reading all %d arrays' % len(arrays))

    def read(lazy):
        entry = arrays[id(lazy)]
        if entry[1] is None:
            entry[1] = lazy.read()
        return entry[1]

    out = {name: [read(entries[i]) for i in sorted(entries)]
           for name, entries in wf.layers.items()}
    for block, entries in wf.blocks.items():
        out[block] = {name: read(arr) for name, arr in entries.items()}
    return out


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
class _ObjectScalar:
    """Pickles as the 0-d object array ``np.save`` makes of a dict."""

    def __init__(self, item):
        self.item = item


class _WeightsPickler(pickle.Pickler):
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
    """NumPy's own ``_reconstruct`` (pickled by name; numpy 1.x and 2.x)."""
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
    _wrap_leaves(tree)  # type check before any file exists
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp',
                               dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            npy_format.write_array_header_1_0(
                f, {'descr': '|O', 'fortran_order': False, 'shape': ()})
            pickler = _WeightsPickler(f, protocol=5)
            pickler.fast = True  # no memo: each fetched array is freed once written
            pickler.dump(_ObjectScalar(_wrap_leaves(tree)))
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
