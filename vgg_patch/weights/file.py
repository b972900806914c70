"""Reading a weights file: :func:`read_npy_tree`, :class:`WeightsFile`, :func:`load_weights`.

The ``.npy`` header is parsed with :mod:`numpy.lib.format` (through a reader
that never asks for more than the file holds), the pickle by
:class:`vgg_patch.weights.unpickle.SafeUnpickler`; the unpickled tree is
walked once per shared object with a depth limit, a payload backs at most
one array, and every failure is one :class:`WeightsFileError` line.
"""
import logging
import os
import struct

import numpy as np
from numpy.lib import format as npy_format

from vgg_patch.weights.errors import (DOWNLOAD_URL, QUOTE_CHARS, WeightsFileError, describe,
                                      shape_text)
from vgg_patch.weights.lazy import LazyArray, check_memory, file_identity
from vgg_patch.weights.stand_ins import ArrayStub, LazyBytes, Sealed
from vgg_patch.weights.unpickle import MAX_DEPTH, BoundedReader, Refused, SafeUnpickler

logger = logging.getLogger(__name__)

__all__ = ['read_npy_tree', 'WeightsFile', 'load_weights']

#: Payloads at least this long may back only one array (shorter ones, such as
#: CPython's shared ``b''``, cannot multiply memory).
_SHARED_PAYLOAD_BYTES = 64


def _first_line(error):
    lines = str(error).splitlines()
    line = lines[0] if lines else ''
    return line if len(line) <= 200 else line[:200] + '...'


def _corrupt(path, detail):
    return WeightsFileError(
        '%s is truncated or corrupt (%s); download it again from %s'
        % (path, detail, DOWNLOAD_URL))


def _read_header(f, path, size):
    """Reads the ``.npy`` header of ``f`` (``size`` bytes long); returns (shape, dtype)."""
    header = BoundedReader(f, size)
    try:
        version = npy_format.read_magic(header)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(header)
        elif version in ((2, 0), (3, 0)):
            shape, _, dtype = npy_format.read_array_header_2_0(header)
        else:
            raise ValueError('unsupported .npy version %s' % (version,))
    except Exception as e:  # pylint: disable=broad-except
        # NumPy's header parser ran on the file's text: whatever it raised
        # (ValueError, SyntaxError, tokenize.TokenError, ...) means corrupt.
        raise _corrupt(path, 'not a readable .npy header: %s: %s'
                       % (type(e).__name__, _first_line(e))) from None
    return shape, dtype


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
        stat_key = file_identity(stat)
        shape, dtype = _read_header(f, path, stat.st_size)
        if not dtype.hasobject:
            raise WeightsFileError(
                '%s holds a %s array of shape %s, not a pickled dict of layers '
                "{'conv1_1': [W, b], ...}" % (path, dtype, shape_text(shape)))
        unpickler = SafeUnpickler(f)
        try:
            tree = unpickler.load()
        except Refused as e:
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
    if name.isprintable() and len(name) <= QUOTE_CHARS:
        return name
    return describe(name)


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
        if (isinstance(tree, ArrayStub) and tree.dtype is not None and tree.dtype.hasobject
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
        if isinstance(obj, ArrayStub):
            if obj.dtype is None:
                raise _corrupt(path, 'an array without state')
            if obj.dtype.hasobject:
                raise WeightsFileError('%s: holds an object array of shape %s; weights '
                                       'must be numeric arrays' % (path, shape_text(obj.shape)))
            length = obj.data.length if isinstance(obj.data, LazyBytes) else len(obj.data)
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
        if isinstance(obj, LazyBytes):
            raise WeightsFileError('%s: holds a large bare bytes object; expected '
                                   'a dict of arrays' % path)
        if isinstance(obj, (Sealed, np.dtype)):
            raise _corrupt(path, 'a stray %s' % (obj,))
        raise _corrupt(path, 'a stray %s' % describe(obj))


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
                raise self._not_layers('a key %s that is not a layer name' % describe(name))
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
    check_memory(wf.path, sum(lazy.read_nbytes for lazy, _ in arrays.values()),
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
