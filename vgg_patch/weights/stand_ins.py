"""What :class:`vgg_patch.weights.unpickle.SafeUnpickler` hands a pickle instead of code.

Part of the security boundary (read with :mod:`vgg_patch.weights.unpickle`):
the unpickler's ``find_class`` returns only the objects of this module
(:data:`vgg_patch.weights.unpickle.ALLOWED_GLOBALS`). Each stands in for a
NumPy global a weights file names -- array reconstruction, ``numpy.dtype``,
latin-1 ``_codecs.encode`` -- checks its arguments, and builds records
(:class:`ArrayStub`) or fresh plain dtypes, never running what a file asks
for. Every object handed out is :class:`Sealed`: ``BUILD`` cannot alter it.
"""
import math
import pickle
import re

import numpy as np

from vgg_patch.weights.errors import describe, shape_text

__all__ = ['Sealed', 'LazyBytes', 'NdarrayClass', 'Global', 'NDARRAY', 'ArrayStub',
           'reconstruct', 'frombuffer', 'latin1_encode', 'safe_dtype', 'dtype_state',
           'MAX_NDIM', 'MAX_NBYTES', 'DTYPE_CODE']

#: NumPy's limits on an array's rank and size in bytes.
MAX_NDIM = 64
MAX_NBYTES = 2 ** 63 - 1

#: ``numpy.dtype`` codes a pickle may name ('f4', 'O8', 'V8', ...).
DTYPE_CODE = re.compile(r'[A-Za-z][0-9]{0,4}\Z')


class Sealed:
    """Base of every object the unpickler hands out: ``BUILD`` cannot alter it."""

    __slots__ = ()

    def __setstate__(self, state):
        raise pickle.UnpicklingError('BUILD on %s' % (self,))


class LazyBytes(Sealed):
    """A payload left in the file: ``length`` bytes at ``offset``."""

    __slots__ = ('offset', 'length')

    def __init__(self, offset, length):
        self.offset = offset
        self.length = length


class NdarrayClass(Sealed):
    """Stands for ``numpy.ndarray`` in a pickle; calling it is refused."""

    __slots__ = ()

    def __repr__(self):
        return 'numpy.ndarray'


class Global(Sealed):
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


NDARRAY = NdarrayClass()


class ArrayStub:
    """What ``numpy.core.multiarray._reconstruct`` builds here: a record, no data.

    ``BUILD`` hands it ndarray's pickled state, which it checks and keeps.
    """

    def __init__(self):
        self.shape = None
        self.dtype = None
        self.fortran_order = False
        self.data = None  # bytes, LazyBytes, or a list (object arrays)

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError('bad ndarray state: %s' % describe(state))
        if len(state) == 5:
            state = state[1:]
        shape, dtype, fortran_order, data = state
        self._set(shape, dtype, fortran_order, data)

    def _set(self, shape, dtype, fortran_order, data):
        if (not isinstance(shape, tuple) or len(shape) > MAX_NDIM
                or not all(isinstance(d, int) and not isinstance(d, bool)
                           and 0 <= d <= MAX_NBYTES for d in shape)):
            raise pickle.UnpicklingError('bad ndarray shape: %s' % describe(shape))
        if not isinstance(dtype, np.dtype):
            raise pickle.UnpicklingError('bad ndarray dtype: %s' % describe(dtype))
        count = math.prod(shape)  # Python ints: no overflow
        if count * max(dtype.itemsize, 1) > MAX_NBYTES:
            raise pickle.UnpicklingError('an array of shape %s is larger than any file'
                                         % shape_text(shape))
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
            elif isinstance(data, LazyBytes):
                length = data.length
            else:
                raise pickle.UnpicklingError('bad ndarray payload: %s' % describe(data))
            if length != count * dtype.itemsize:
                raise pickle.UnpicklingError(
                    'array payload of %d bytes, expected %d for shape %s %s'
                    % (length, count * dtype.itemsize, shape_text(shape), dtype.str))
        self.shape = shape
        self.dtype = dtype
        self.fortran_order = bool(fortran_order)
        self.data = data


def reconstruct(cls, shape, dtype_code):
    """Safe stand-in for ``numpy.core.multiarray._reconstruct``."""
    del shape, dtype_code  # numpy passes (0,), b'b': placeholders only
    if cls is not NDARRAY:
        raise pickle.UnpicklingError('_reconstruct of %s' % describe(cls))
    return ArrayStub()


def frombuffer(buf, dtype, shape, order):
    """Safe stand-in for ``numpy.core.numeric._frombuffer`` (protocol-5 arrays)."""
    stub = ArrayStub()
    if isinstance(buf, pickle.PickleBuffer):
        buf = bytes(buf)
    stub._set(tuple(shape), dtype, order == 'F', buf)
    return stub


def latin1_encode(obj, encoding='utf-8', errors='strict'):
    """``_codecs.encode`` limited to latin-1 (Python 3's protocol-2 bytes)."""
    if (not isinstance(obj, str) or not isinstance(encoding, str)
            or encoding.replace('-', '').lower() not in ('latin1', 'iso88591')):
        raise pickle.UnpicklingError('_codecs.encode(%s, %s)'
                                     % (describe(obj), describe(encoding)))
    if errors != 'strict':  # pickle never writes another handler; others may not exist
        raise pickle.UnpicklingError('_codecs.encode with error handler %s' % describe(errors))
    try:
        return obj.encode('latin1')
    except UnicodeEncodeError:
        raise pickle.UnpicklingError('_codecs.encode of text that is not latin-1') from None


def safe_dtype(code, align=False, copy=True):
    """Safe stand-in for ``numpy.dtype``: a fresh dtype from a plain type code.

    Always a copy: ``BUILD`` then sets the copy's byte order, never that of
    NumPy's shared built-in dtype.
    """
    del copy
    if not isinstance(code, str) or not DTYPE_CODE.match(code):
        raise pickle.UnpicklingError('numpy.dtype(%s)' % describe(code))
    if align not in (0, 1):
        raise pickle.UnpicklingError('numpy.dtype(align=%s)' % describe(align))
    return np.dtype(code, align=bool(align), copy=True)


def dtype_state(dtype, state):
    """Checks a dtype's pickled state; returns the sanitized state NumPy may apply.

    Only plain dtypes (no fields, no subarray) are accepted; the flags are the
    dtype's own, whatever the file says.
    """
    if (not isinstance(state, tuple) or len(state) not in (8, 9)
            or state[0] not in (3, 4) or state[1] not in ('<', '>', '|', '=')
            or any(item is not None for item in state[2:5])
            or not all(type(v) is int for v in state[5:8])  # pylint: disable=unidiomatic-typecheck
            or (len(state) == 9 and state[8] is not None)):
        raise pickle.UnpicklingError('bad dtype state: %s' % describe(state))
    elsize, alignment = state[5], state[6]
    if not -1 <= elsize < 2 ** 31 or alignment not in (-1, 1, 2, 4, 8, 16):
        raise pickle.UnpicklingError('bad dtype state: size %s, alignment %s'
                                     % (describe(elsize), describe(alignment)))
    if elsize >= 0 and dtype.kind not in 'VSU':
        elsize = -1  # only flexible dtypes take their size from the state
    return (3, state[1], None, None, None, elsize, alignment, dtype.flags)
