"""Arrays left in their file until asked for: :class:`LazyArray`.

:meth:`LazyArray.read` reads one array straight into a 64-byte aligned
float32 buffer (:func:`aligned_empty`), which TensorFlow wraps without a
copy, after checking that the file is unchanged since it was parsed and that
the memory it needs can exist (:func:`check_memory`).
"""
import math
import os

import numpy as np

from vgg_patch.weights.errors import DOWNLOAD_URL, WeightsFileError, shape_text
from vgg_patch.weights.stand_ins import LazyBytes

__all__ = ['LazyArray', 'aligned_empty', 'check_memory', 'file_identity']

#: Alignment TensorFlow needs to adopt a NumPy buffer without copying it.
_ALIGN = 64

#: Chunk used when a stored dtype must be converted to float32.
_CHUNK_BYTES = 16 << 20


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
        return 'LazyArray(%r, shape=%s, dtype=%s)' % (self.path, shape_text(self.shape),
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
                % (self.path, shape_text(self.shape), self.dtype))
        check_memory(self.path, self.read_nbytes, 'an array of shape %s' % shape_text(self.shape))
        try:
            out = aligned_empty(self.shape, np.float32)
            if isinstance(self._data, LazyBytes):
                self._read_from_file(out)
            else:
                src = np.frombuffer(self._data, dtype=self.dtype)
                src = src.reshape(self.shape, order='F' if self._fortran else 'C')
                out[...] = src
        except MemoryError:
            raise WeightsFileError('%s: not enough memory to read an array of shape %s (%s)'
                                   % (self.path, shape_text(self.shape),
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
            if file_identity(stat) != self._stat_key:
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


def check_memory(path, nbytes, what):
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


def file_identity(stat):
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev)
