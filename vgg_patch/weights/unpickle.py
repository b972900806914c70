"""The security boundary: :class:`SafeUnpickler`, which reads weights files' pickles.

tensorflow-vgg reads its weights with ``np.load(allow_pickle=True)``, and
unpickling runs whatever the pickle asks for. This module (with the stand-ins
of :mod:`vgg_patch.weights.stand_ins`, the only objects it lets a pickle
reach) is everything between a file's bytes and Python objects; it can be
reviewed alone:

* ``find_class`` is the single gate through which a pickle reaches code: it
  returns the stand-ins of :data:`ALLOWED_GLOBALS` and raises
  :class:`Refused` for every other global, before anything runs;
* every length is checked against the bytes left in the file before
  anything is allocated; dict keys can only be str, bytes or int (so nothing
  deep or shared is hashed, where CPython recurses in C); sets are refused;
  nesting deeper than :data:`MAX_DEPTH` is refused as it is built;
* large payloads are recorded as (file offset, length)
  (:class:`vgg_patch.weights.stand_ins.LazyBytes`) and skipped, so parsing a
  large file reads a few kilobytes.
"""
import io
import pickle
import struct

import numpy as np

from vgg_patch.weights.errors import describe
from vgg_patch.weights.stand_ins import (NDARRAY, ArrayStub, Global, LazyBytes, dtype_state,
                                         frombuffer, latin1_encode, reconstruct, safe_dtype)

__all__ = ['SafeUnpickler', 'Refused', 'ALLOWED_GLOBALS', 'BoundedReader', 'past_end',
           'LAZY_MIN_BYTES', 'MAX_DEPTH']

#: Payloads at least this large are recorded as file offsets instead of read.
LAZY_MIN_BYTES = 4096

#: Deepest nesting of containers a weights file may have (they have 5 levels).
MAX_DEPTH = 64


class Refused(Exception):
    """Raised inside the unpickler for a global outside the allow-list."""

    def __init__(self, module, name):
        super().__init__(module, name)
        self.module = module
        self.name = name


ALLOWED_GLOBALS = {
    ('numpy.core.multiarray', '_reconstruct'): Global(reconstruct),
    ('numpy._core.multiarray', '_reconstruct'): Global(reconstruct),
    ('numpy.core.numeric', '_frombuffer'): Global(frombuffer),
    ('numpy._core.numeric', '_frombuffer'): Global(frombuffer),
    ('numpy', 'ndarray'): NDARRAY,
    ('numpy', 'dtype'): Global(safe_dtype),
    ('_codecs', 'encode'): Global(latin1_encode),
}


def past_end(length):
    return EOFError('a length of %d bytes runs past the end of the file' % length)


class BoundedReader:
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
            raise past_end(n)
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
                                 'int keys' % (kind.__name__, describe(key)))


class SafeUnpickler(pickle._Unpickler):  # pylint: disable=protected-access
    """Unpickles weights files: NumPy arrays and plain containers only, lazily.

    ``find_class`` is the single gate through which a pickle reaches code; it
    returns safe stand-ins for NumPy's array reconstruction and ``numpy.dtype``
    and raises for every other global, so nothing a crafted file names runs.
    Arrays come back as :class:`ArrayStub` records whose large payloads stay
    in the file (see the module docstring);
    :func:`vgg_patch.weights.read_npy_tree` turns them into
    :class:`vgg_patch.weights.LazyArray`.

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
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise Refused(module, name) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError('persistent id %s' % describe(pid))

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
            raise past_end(length)

    def _payload(self, length):
        """Reads ``length`` bytes, or records them as a :class:`LazyBytes`."""
        if (self._in_frame() or self._lazy_min_bytes is None
                or length < self._lazy_min_bytes):
            return self._exact(length)
        self._check_left(length)
        offset = self._source.tell()
        self._source.seek(offset + length)
        return LazyBytes(offset, length)

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
        self.append(data if isinstance(data, LazyBytes) else self._decode_string(data))
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
        self.append(data if isinstance(data, LazyBytes) else bytearray(data))
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
            raise pickle.UnpicklingError('APPEND to %s' % describe(target))
        target.append(value)
        self._grow(target, (value,))
    dispatch[pickle.APPEND[0]] = load_append

    def load_appends(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not list:  # pylint: disable=unidiomatic-typecheck
            raise pickle.UnpicklingError('APPENDS to %s' % describe(target))
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
            raise pickle.UnpicklingError('SETITEM on %s' % describe(target))
        target[_check_key(key)] = value
        self._grow(target, (value,))
    dispatch[pickle.SETITEM[0]] = load_setitem

    def load_setitems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not dict or len(items) % 2:  # pylint: disable=unidiomatic-typecheck
            raise pickle.UnpicklingError('SETITEMS on %s with %d items'
                                         % (describe(target), len(items)))
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
        if isinstance(target, ArrayStub):
            target.__setstate__(state)
        elif type(target) is np.dtype or isinstance(target, np.dtype):
            target.__setstate__(dtype_state(target, state))
        else:
            raise pickle.UnpicklingError('BUILD on %s' % describe(target))
    dispatch[pickle.BUILD[0]] = load_build
