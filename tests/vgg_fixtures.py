"""Synthetic VGG19 weights files for the vgg_patch tests (importable helpers).

* :data:`VGG19_SHAPES`, :data:`VGG19_PARAMS`, :func:`make_array`,
  :func:`make_layer`, :func:`make_weights` -- the layout of tensorflow-vgg's
  ``vgg19.npy`` and He-scaled synthetic weights, from :mod:`vgg_patch.layout`
  (activations stay finite through all 19 layers).
* :func:`write_python2_npy` -- the original file's format, written opcode by
  opcode as Python 2's cPickle (protocol 2) wrote it: str keys and array
  payloads as SHORT_BINSTRING/BINSTRING, the dict wrapped in a 0-d object
  array as ``np.save`` does. Leaves may be callables, so a 548 MB file is
  written one layer at a time.
* :func:`write_indexed_npy` -- tensorflow-vgg's ``save_npy`` output
  (``np.save`` of ``{name: {0: W, 1: b}}``).
* :func:`full_size_npy` -- the full-size (548 MB) original-format file,
  written once per pytest session under the session's base temp dir.

Usage from a test module::

    from vgg_fixtures import make_weights, write_python2_npy, full_size_npy
"""
import os
import struct

import numpy as np
from numpy.lib import format as npy_format

from vgg_patch import layout

#: name -> (weights shape, biases shape), in tensorflow-vgg's order.
VGG19_SHAPES = layout.LAYER_SHAPES

#: Parameters in tensorflow-vgg's vgg19.npy.
VGG19_PARAMS = layout.PARAMS

#: Layer ``name``'s weights (index 0, He-scaled) or biases (index 1, N(0, 0.01)),
#: deterministic per (name, index, seed).
make_array = layout.synthetic_array


#: ``[W, b]`` of one layer (see :func:`make_array`).
make_layer = layout.synthetic_layer


#: ``{name: [W, b]}`` for every layer of ``shapes`` (VGG19's by default).
make_weights = layout.synthetic_weights

#: A small three-layer network, one layer of odd shapes, for weights-file tests.
SMALL_SHAPES = {'conv1_1': ((3, 3, 3, 64), (64,)), 'fc8': ((64, 10), (10,)),
                'tiny': ((2, 2), (3,))}


def small_weights():
    """``{name: [W, b]}`` of :data:`SMALL_SHAPES` (seed 3)."""
    return make_weights(seed=3, shapes=SMALL_SHAPES)


# --------------------------------------------------------------------------
# Python 2 (cPickle protocol 2) writer
# --------------------------------------------------------------------------
def _int(f, value):
    if 0 <= value < 256:
        f.write(b'K' + struct.pack('<B', value))
    elif 0 <= value < 65536:
        f.write(b'M' + struct.pack('<H', value))
    else:
        f.write(b'J' + struct.pack('<i', value))


def _py2_str(f, data):
    """A Python 2 ``str`` (bytes): SHORT_BINSTRING or BINSTRING."""
    if isinstance(data, str):
        data = data.encode('latin1')
    if len(data) < 256:
        f.write(b'U' + struct.pack('<B', len(data)) + data)
    else:
        f.write(b'T' + struct.pack('<i', len(data)))
        f.write(data)


def _tuple(f, items_writer, count):
    if count == 0:
        f.write(b')')
        return
    if count > 3:
        f.write(b'(')
    items_writer()
    f.write({1: b'\x85', 2: b'\x86', 3: b'\x87'}.get(count, b't'))


def _py2_dtype(f, dtype):
    dtype = np.dtype(dtype)
    f.write(b'cnumpy\ndtype\n')
    _tuple(f, lambda: (_py2_str(f, dtype.str[1:]), _int(f, 0), _int(f, 1)), 3)
    f.write(b'R')
    f.write(b'(')  # state (3, '<', None, None, None, -1, -1, flags)
    _int(f, 3)
    _py2_str(f, '|' if dtype.itemsize == 1 else dtype.str[0])
    f.write(b'NNN')
    f.write(b'J' + struct.pack('<i', -1))
    f.write(b'J' + struct.pack('<i', -1))
    _int(f, dtype.flags)  # 63 for object, 0 for numbers
    f.write(b't')
    f.write(b'b')


def _py2_array(f, arr):
    arr = np.ascontiguousarray(arr)
    f.write(b'cnumpy.core.multiarray\n_reconstruct\n')
    f.write(b'cnumpy\nndarray\n')
    _tuple(f, lambda: _int(f, 0), 1)
    _py2_str(f, b'b')
    f.write(b'\x87R')  # TUPLE3, REDUCE
    f.write(b'(')  # state (1, shape, dtype, False, data)
    _int(f, 1)
    _tuple(f, lambda: [_int(f, d) for d in arr.shape], arr.ndim)
    _py2_dtype(f, arr.dtype)
    f.write(b'\x89')  # NEWFALSE
    data = memoryview(arr.reshape(-1)).cast('B')
    if len(data) < 256:
        f.write(b'U' + struct.pack('<B', len(data)))
    else:
        f.write(b'T' + struct.pack('<i', len(data)))
    f.write(data)
    f.write(b't')
    f.write(b'b')


def write_python2_npy(path, weights):
    """Writes ``{name: [W, b]}`` as Python 2 wrote tensorflow-vgg's vgg19.npy.

    Args:
      path: destination.
      weights: ``{name: [W, b]}``; each list item may be an array or a
        zero-argument callable returning one (called while writing).

    Returns:
      ``path``.
    """
    with open(path, 'wb') as f:
        npy_format.write_array_header_1_0(
            f, {'descr': '|O', 'fortran_order': False, 'shape': ()})
        f.write(b'\x80\x02')  # PROTO 2
        # np.save's 0-d object array around the dict
        f.write(b'cnumpy.core.multiarray\n_reconstruct\n')
        f.write(b'cnumpy\nndarray\n')
        _tuple(f, lambda: _int(f, 0), 1)
        _py2_str(f, b'b')
        f.write(b'\x87R(')
        _int(f, 1)
        f.write(b')')
        _py2_dtype(f, np.dtype(object))
        f.write(b'\x89')
        f.write(b']')  # the object array's items: [dict]
        f.write(b'}(')  # EMPTY_DICT, MARK
        for name, items in weights.items():
            _py2_str(f, name)
            f.write(b'](')  # EMPTY_LIST, MARK
            for item in items:
                _py2_array(f, item() if callable(item) else item)
            f.write(b'e')  # APPENDS
        f.write(b'u')  # SETITEMS
        f.write(b'a')  # APPEND the dict to the items list
        f.write(b't')  # state tuple
        f.write(b'b')  # BUILD
        f.write(b'.')
    return path


def write_indexed_npy(path, weights):
    """tensorflow-vgg's ``save_npy`` output: ``np.save`` of ``{name: {0: W, 1: b}}``."""
    np.save(path, {name: dict(enumerate(items)) for name, items in weights.items()},
            allow_pickle=True)
    return path


def full_size_npy(tmp_path_factory, seed=0):
    """The full-size original-format vgg19.npy (548 MB), written once per session.

    Args:
      tmp_path_factory: pytest's session fixture.
      seed: random seed of the weights (:func:`make_layer`).

    Returns:
      The path (a str).
    """
    directory = tmp_path_factory.getbasetemp() / 'vgg_synthetic'
    directory.mkdir(exist_ok=True)
    path = directory / ('vgg19_full_seed%d.npy' % seed)
    if not path.exists():
        tmp = directory / (path.name + '.partial')
        layers = {}
        for name in VGG19_SHAPES:
            layers[name] = [
                (lambda n=name, i=i: make_array(n, i, seed)) for i in (0, 1)]
        write_python2_npy(str(tmp), layers)
        os.replace(tmp, path)
    return str(path)


# --------------------------------------------------------------------------
# Hostile files, and loading files in a capped subprocess
# --------------------------------------------------------------------------
#: A tiny two-layer network: files made from it are ~10 KB, one payload lazy.
TINY_SHAPES = {'conv1_1': ((3, 3, 3, 64), (64,)), 'fc8': ((64, 10), (10,))}


def write_object_npy(path, pickle_bytes):
    """A .npy whose header says 'pickled object', followed by ``pickle_bytes``."""
    with open(path, 'wb') as f:
        npy_format.write_array_header_1_0(
            f, {'descr': '|O', 'fortran_order': False, 'shape': ()})
        f.write(pickle_bytes)
    return str(path)


def _pickle_long(value):
    raw = value.to_bytes(value.bit_length() // 8 + 1, 'little')
    return b'\x8a' + bytes([len(raw)]) + raw  # LONG1


def _with_extra_layer(path, shape, payload_length, gap):
    """The tiny Python-2 file plus layer ``'extra'``: one float32 array of
    ``shape`` whose BINBYTES8 payload says ``payload_length`` bytes, followed by
    ``gap`` bytes of hole (a sparse file) before the closing opcodes."""
    write_python2_npy(path, {n: make_layer(n, seed=1, shapes=TINY_SHAPES) for n in TINY_SHAPES})
    with open(path, 'rb') as f:
        data = f.read()
    assert data.endswith(b'uatb.')  # SETITEMS, APPEND, state tuple, BUILD, STOP
    array = (b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R'
             b'(K\x01(' + b''.join(_pickle_long(d) for d in shape) + b't'
             b'cnumpy\ndtype\nU\x02f4K\x00K\x01\x87R'
             b'(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb'
             b'\x89\x8e' + struct.pack('<Q', payload_length))
    with open(path, 'wb') as f:
        f.write(data[:-5] + b'U\x05extra](' + array)
        f.seek(gap, os.SEEK_CUR)
        f.write(b'tbe' + data[-5:])
    return str(path)


def billion_laughs_npy(path, levels=30):
    """{'conv1_1': L30} where L(i+1) = [L(i), L(i)] through the pickle memo:
    2**30 lists described in ~300 bytes."""
    body = b'\x80\x02}U\x07conv1_1]q\x000'
    for i in range(levels):
        body += b'](h%sh%seq%s0' % (bytes([i]), bytes([i]), bytes([i + 1]))
    return write_object_npy(path, body + b'h%ss.' % bytes([levels]))


def deep_tuple_npy(path, depth=200000):
    """A dict whose key is a tuple nested ``depth`` deep (hashing it recursed in C)."""
    return write_object_npy(path, b'\x80\x02}(' + b')' + b'\x85' * depth + b'K\x00u.')


def codec_name_npy(path):
    """``_codecs.encode('\\u0100', 'latin1', 'nope')``: an unknown error handler."""
    return write_object_npy(
        path, b'\x80\x02}(U\x07conv1_1c_codecs\nencode\n'
              b'X\x02\x00\x00\x00\xc4\x80U\x06latin1U\x04nope\x87Ru.')


def int64_overflow_shape_npy(path):
    """An extra layer of shape (2**62, 4) float32: 2**64 elements, 0 mod 2**64,
    with an empty payload."""
    return _with_extra_layer(path, (2 ** 62, 4), 0, 0)


def sparse_4tb_npy(path):
    """An extra 4 TB float32 layer whose payload is a hole (a sparse file)."""
    return _with_extra_layer(path, (2 ** 40,), 2 ** 42, 2 ** 42)


#: name -> writer(path) of each hostile file the loader is pinned against.
HOSTILE_FILES = {
    'billion_laughs': billion_laughs_npy,
    'deep_tuple': deep_tuple_npy,
    'codec_name': codec_name_npy,
    'int64_overflow_shape': int64_overflow_shape_npy,
    'sparse_4tb': sparse_4tb_npy,
}

_LOAD_CHILD = r'''
import json, os, resource, signal, sys, time
sys.path.insert(0, sys.argv[1])
from vgg_patch import weights

def status():
    with open('/proc/self/status') as f:
        return {l.split(':')[0]: int(l.split()[1]) * 1024 for l in f
                if l.startswith(('VmHWM', 'VmRSS', 'VmSize'))}

class Hang(BaseException):
    pass

def alarm(*_):
    raise Hang()

signal.signal(signal.SIGALRM, alarm)
cap = status()['VmSize'] + int(sys.argv[2]) * 2 ** 20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
case_seconds = float(sys.argv[3])
batch_base = status()['VmRSS']
for i, path in enumerate(json.loads(sys.stdin.read())):
    print('START %d' % i, flush=True)
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')  # resets VmHWM to the current RSS
        base = status()['VmRSS']
    except OSError:
        base = batch_base  # conservative: the batch's peak counts against each case
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, case_seconds)
    try:
        weights.load_weights(path)
        outcome, message = 'ok', ''
    except weights.WeightsFileError as e:
        outcome, message = 'WeightsFileError', str(e)
    except Hang:
        outcome, message = 'hang', 'still running after %.1f s' % case_seconds
    except BaseException as e:  # reported, not raised: the parent judges
        outcome, message = type(e).__name__, str(e)[:500]
    signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - start
    print(json.dumps({'index': i, 'outcome': outcome, 'message': message[:2000],
                      'seconds': seconds, 'peak_bytes': status()['VmHWM'] - base}), flush=True)
'''


def load_in_subprocess(paths, memory_cap_mb=1024, case_seconds=5.0, timeout=120):
    """Runs ``vgg_patch.weights.load_weights`` on each path in one fresh interpreter.

    The child's address space is capped at its size after start-up plus
    ``memory_cap_mb`` (``RLIMIT_AS``); each load has ``case_seconds`` (SIGALRM)
    and the whole batch ``timeout``. The child imports NumPy and the loader only
    (no TensorFlow, whatever the suite's TF behaviour: the loader does not use it).

    Returns:
      ``(results, failure)``: one dict per finished load (index, outcome --
      'ok', 'WeightsFileError', 'hang' or another exception's name -- message,
      seconds, peak_bytes: peak RSS beyond the RSS before the load), and None,
      or, if the child died or the batch timed out, ``(index of the load in
      progress, description)``.
    """
    import json
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env.pop('TEST_TF_BEHAVIOR', None)  # keeps tests/v1_behavior from importing TF
    env['OPENBLAS_NUM_THREADS'] = '1'
    proc = subprocess.Popen(
        [sys.executable, '-c', _LOAD_CHILD, root, str(memory_cap_mb), str(case_seconds)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = proc.communicate(json.dumps([os.fspath(p) for p in paths]).encode(),
                                    timeout=timeout)
        why = None if proc.returncode == 0 else 'the child exited with %d: %s' % (
            proc.returncode, err.decode(errors='replace')[-1500:])
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        why = 'the batch ran past %s s' % timeout
    results, current = [], None
    for line in out.decode(errors='replace').splitlines():
        if line.startswith('START '):
            current = int(line.split()[1])
        elif line.startswith('{'):
            results.append(json.loads(line))
            current = None
    if why is None:
        return results, None
    return results, (current if current is not None else len(results), why)
