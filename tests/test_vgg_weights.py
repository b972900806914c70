"""vgg_patch.weights: safe, lazy npy parsing, the three formats, bad files, writing."""
import io
import os
import struct
import pickle
import pickletools
import re

import numpy as np
import pytest
from numpy.lib import format as npy_format

from vgg_patch import weights as wl
from vgg_patch.weights import WeightsFile, WeightsFileError

from vgg_fixtures import (HOSTILE_FILES, TINY_SHAPES, VGG19_SHAPES, load_in_subprocess,
                          make_layer,
                          write_indexed_npy, write_object_npy, write_python2_npy)

SMALL_SHAPES = {'conv1_1': ((3, 3, 3, 64), (64,)), 'fc8': ((64, 10), (10,)),
                'tiny': ((2, 2), (3,))}


def _small():
    return {name: make_layer(name, seed=3, shapes=SMALL_SHAPES) for name in SMALL_SHAPES}


def _opcodes(path):
    with open(path, 'rb') as f:
        npy_format.read_magic(f)
        npy_format.read_array_header_1_0(f)
        return [(op.name, arg) for op, arg, _ in pickletools.genops(f)]


# --------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------
def test_python2_file_is_really_python2_pickle_and_loads(tmp_path):
    weights = _small()
    path = write_python2_npy(str(tmp_path / 'py2.npy'), weights)
    ops = _opcodes(path)
    names = {name for name, _ in ops}
    assert ops[0] == ('PROTO', 2)
    assert 'BINSTRING' in names and 'SHORT_BINSTRING' in names
    assert not names & {'BINUNICODE', 'SHORT_BINUNICODE', 'BINBYTES', 'SHORT_BINBYTES',
                        'FRAME', 'STACK_GLOBAL'}
    # str keys: the layer names are SHORT_BINSTRINGs
    assert {arg for name, arg in ops if name == 'SHORT_BINSTRING'} >= set(weights)
    # NumPy itself reads it the way tensorflow-vgg does
    ref = np.load(path, encoding='latin1', allow_pickle=True).item()
    for name in weights:
        for a, b in zip(ref[name], weights[name]):
            np.testing.assert_array_equal(a, b)

    wf = WeightsFile(path)
    assert wf.format == 'original'
    assert set(wf.layers) == set(weights) and not wf.blocks
    for name, (w, b) in weights.items():
        assert wf.layers[name][0].shape == w.shape
        np.testing.assert_array_equal(wf.layers[name][0].read(), w)
        np.testing.assert_array_equal(wf.layers[name][1].read(), b)
    assert wl.load_weights(path).keys() == weights.keys()


def test_tensorflow_vgg_save_npy_format_loads(tmp_path):
    weights = _small()
    path = write_indexed_npy(str(tmp_path / 'tfvgg.npy'), weights)
    wf = WeightsFile(path)
    assert wf.format == 'indexed'
    for name, (w, b) in weights.items():
        np.testing.assert_array_equal(wf.array(name, 0, w.shape).read(), w)
        np.testing.assert_array_equal(wf.array(name, 1, b.shape).read(), b)


def test_parsing_is_lazy_and_reads_each_array_on_demand(tmp_path):
    weights = _small()
    path = write_python2_npy(str(tmp_path / 'py2.npy'), weights)
    wf = WeightsFile(path)
    big = wf.layers['conv1_1'][0]
    assert big.nbytes >= wl.LAZY_MIN_BYTES
    # the payload was not read: it is still only a (offset, length) record
    assert isinstance(big._data, wl._LazyBytes)  # pylint: disable=protected-access
    out = big.read()
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert out.ctypes.data % 64 == 0  # TF adopts 64-byte aligned buffers without a copy
    np.testing.assert_array_equal(out, weights['conv1_1'][0])
    # large payloads stay in the file in every format: np.save's (protocol 4,
    # outside its frames) and save_weights' (protocol 5) too
    big = np.arange(300000, dtype=np.float32).reshape(600, 500)
    for name, writer in (('np.npy', lambda p: np.save(p, {'fc6': {0: big}}, allow_pickle=True)),
                         ('own.npy', lambda p: wl.save_weights(p, {'fc6': {0: big}}))):
        writer(str(tmp_path / name))
        lazy = WeightsFile(str(tmp_path / name)).layers['fc6'][0]
        assert isinstance(lazy._data, wl._LazyBytes), name  # pylint: disable=protected-access
        np.testing.assert_array_equal(lazy.read(), big)


def test_float64_float16_big_endian_and_fortran_are_converted(tmp_path):
    rng = np.random.default_rng(0)
    big64 = rng.standard_normal((3000, 1000))  # 24 MB: several conversion chunks
    arrays = {
        'f64': {0: big64, 1: np.arange(5, dtype=np.float64)},
        'f16': {0: np.arange(6, dtype=np.float16).reshape(2, 3)},
        'be': {0: np.arange(7000, dtype='>f4')},
        'fortran': {0: np.asfortranarray(rng.standard_normal((70, 30)).astype(np.float32))},
    }
    path = str(tmp_path / 'mixed.npy')
    np.save(path, arrays, allow_pickle=True)
    wf = WeightsFile(path)
    for name, entries in arrays.items():
        for idx, ref in entries.items():
            got = wf.array(name, idx, ref.shape).read()
            assert got.dtype == np.float32 and got.flags.c_contiguous
            np.testing.assert_array_equal(got, ref.astype(np.float32))


def test_save_weights_round_trip_np_load_and_atomic(tmp_path):
    weights = _small()
    tree = {name: {0: w, 1: (lambda b=b: b)} for name, (w, b) in weights.items()}
    tree['cbam_0'] = {'ChannelAttention/fc1/weights': np.ones((4, 2), np.float32)}
    path = str(tmp_path / 'own.npy')
    assert wl.save_weights(path, tree) == path
    assert sorted(os.listdir(tmp_path)) == ['own.npy']  # no temporary left behind
    ref = np.load(path, allow_pickle=True).item()  # tensorflow-vgg can read it
    np.testing.assert_array_equal(ref['conv1_1'][1], weights['conv1_1'][1])
    wf = WeightsFile(path)
    assert set(wf.layers) == set(weights)
    assert set(wf.blocks) == {'cbam_0'}
    np.testing.assert_array_equal(
        wf.block_array('cbam_0', 'ChannelAttention/fc1/weights', (4, 2)).read(),
        np.ones((4, 2)))
    np.testing.assert_array_equal(wf.layers['fc8'][0].read(), weights['fc8'][0])
    # a failing write leaves the existing file untouched
    before = open(path, 'rb').read()

    def boom():
        raise RuntimeError('fetch failed')

    with pytest.raises(RuntimeError, match='fetch failed'):
        wl.save_weights(path, {'conv1_1': {0: boom}})
    assert open(path, 'rb').read() == before
    assert sorted(os.listdir(tmp_path)) == ['own.npy']
    with pytest.raises(TypeError, match='arrays or callables'):
        wl.save_weights(path, {'conv1_1': {0: 'not an array'}})


def test_save_weights_gives_the_usual_file_permissions(tmp_path):
    # mkstemp makes 0600 files; an export must be readable like any np.save output.
    umask = os.umask(0o022)
    try:
        path = wl.save_weights(str(tmp_path / 'own.npy'), {'conv1_1': {0: np.ones(2, np.float32)}})
    finally:
        os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_file_changed_after_parsing_is_reported(tmp_path):
    path = write_python2_npy(str(tmp_path / 'w.npy'), _small())
    wf = WeightsFile(path)
    with open(path, 'r+b') as f:  # cut it short after parsing
        f.truncate(os.path.getsize(path) - 100)
    with pytest.raises(WeightsFileError, match='changed since the network was built'):
        wf.layers['conv1_1'][0].read()


# --------------------------------------------------------------------------
# Safety
# --------------------------------------------------------------------------
def _system_pickle(target, module=b'os'):
    return (b'\x80\x02c' + module + b'\nsystem\n(U' + bytes([len(b'touch ' + target)])
            + b'touch ' + target + b'tR.')


def test_crafted_pickle_is_refused_and_does_not_run(tmp_path):
    target = tmp_path / 'pwned'
    path = write_object_npy(tmp_path / 'evil.npy', _system_pickle(str(target).encode()))
    with pytest.raises(WeightsFileError) as info:
        WeightsFile(path)
    message = str(info.value)
    assert path in message and "'os.system'" in message and 'nothing' in message
    assert '\n' not in message
    assert not target.exists()
    # the same file does run its command under np.load(allow_pickle=True)
    np.load(path, allow_pickle=True)
    assert target.exists()


@pytest.mark.parametrize('payload, refused', [
    # hidden inside a layer list, after a valid key
    (b'\x80\x02}(U\x07conv1_1](cposix\nsystem\n(U\x04trueR' + b'tRe' + b'u.', 'posix.system'),
    (b'\x80\x02cbuiltins\neval\n(U\x041+1tR.', 'builtins.eval'),
    (b'\x80\x02cnumpy\nload\n(U\x01xtR.', 'numpy.load'),
    (b'\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x04exec\x93.',
     'builtins.exec'),
])
def test_every_other_global_is_refused(tmp_path, payload, refused):
    path = write_object_npy(tmp_path / 'evil.npy', payload)
    with pytest.raises(WeightsFileError, match=r"refused.*'%s'" % refused.replace('.', r'\.')):
        WeightsFile(path)


def test_array_reconstruction_cannot_be_abused(tmp_path):
    # _reconstruct applied to something other than numpy.ndarray
    payload = (b'\x80\x02cnumpy.core.multiarray\n_reconstruct\n(U\x01aK\x00\x85U\x01btR.')
    with pytest.raises(WeightsFileError, match='truncated or corrupt'):
        WeightsFile(write_object_npy(tmp_path / 'a.npy', payload))
    # numpy.ndarray itself is not callable here
    payload = b'\x80\x02cnumpy\nndarray\n(K\x03\x85tR.'
    with pytest.raises(WeightsFileError, match='truncated or corrupt'):
        WeightsFile(write_object_npy(tmp_path / 'b.npy', payload))
    # BUILD cannot rewrite the allowed globals (here: a function's defaults)
    for target in (b'cnumpy.core.multiarray\n_reconstruct\n', b'c_codecs\nencode\n',
                   b'cnumpy\nndarray\n', b'cnumpy\ndtype\n'):
        # target, (None, {'__defaults__': ('x', 'y')}), BUILD
        payload = (b'\x80\x02' + target + b'N}U\x0c__defaults__U\x01xU\x01y\x86s\x86b.')
        with pytest.raises(WeightsFileError, match='truncated or corrupt'):
            WeightsFile(write_object_npy(tmp_path / 'c.npy', payload))
    assert wl._latin1_encode.__defaults__ == ('utf-8', 'strict')  # pylint: disable=protected-access


# --------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------
def test_missing_file_points_to_the_download(tmp_path):
    path = str(tmp_path / 'vgg19.npy')
    with pytest.raises(WeightsFileError) as info:
        WeightsFile(path)
    message = str(info.value)
    assert path in message and 'https://github.com/machrisaa/tensorflow-vgg' in message
    assert 'download' in message and '\n' not in message


def test_truncated_files_say_download_again(tmp_path):
    full = open(write_python2_npy(str(tmp_path / 'full.npy'), _small()), 'rb').read()
    for cut in (5, 60, 140, len(full) // 3, len(full) // 2, len(full) - 40, len(full) - 1):
        path = tmp_path / ('cut%d.npy' % cut)
        path.write_bytes(full[:cut])
        with pytest.raises(WeightsFileError) as info:
            WeightsFile(str(path))
        message = str(info.value)
        assert str(path) in message and 'download it again' in message, (cut, message)
        assert '\n' not in message


@pytest.mark.parametrize('seed', range(40))
def test_corrupt_payload_says_download_again(tmp_path, seed):
    # Seeded random garbage after the pickle's protocol opcode (was os.urandom:
    # one CI run drew a BINBYTES8 length of 1.4e18, which made the lazy reader's
    # seek fail with EINVAL instead of reporting a corrupt file).
    full = bytearray(open(write_python2_npy(str(tmp_path / 'f.npy'), _small()), 'rb').read())
    start = full.index(b'\x80\x02')
    garbage = np.random.RandomState(seed).bytes(38).replace(b'c', b'x').replace(b'i', b'x')
    full[start + 2:start + 40] = garbage
    path = tmp_path / 'corrupt.npy'
    path.write_bytes(bytes(full))
    with pytest.raises(WeightsFileError, match='truncated or corrupt.*download it again'):
        WeightsFile(str(path))


@pytest.mark.parametrize('length', [2 ** 40, 2 ** 60, 2 ** 64 - 1])
def test_payload_length_beyond_any_file_is_corrupt_not_an_oserror(tmp_path, length):
    full = bytearray(open(write_python2_npy(str(tmp_path / 'f.npy'), _small()), 'rb').read())
    start = full.index(b'\x80\x02')
    # BINBYTES8 (protocol 4's 8-byte length) with a length no file can have.
    full[start + 2:] = b'\x8e' + struct.pack('<Q', length) + b'\x00' * 64
    path = tmp_path / 'huge.npy'
    path.write_bytes(bytes(full))
    with pytest.raises(WeightsFileError, match='truncated or corrupt.*download it again'):
        WeightsFile(str(path))


def test_not_a_readable_header(tmp_path):
    path = tmp_path / 'corrupt.npy'
    path.write_bytes(b'PK\x03\x04 this is a zip, not an npy')
    with pytest.raises(WeightsFileError, match='not a readable .npy header'):
        WeightsFile(str(path))


def test_not_a_dict_of_layers(tmp_path):
    path = str(tmp_path / 'array.npy')
    np.save(path, np.zeros((3, 4), np.float32))
    with pytest.raises(WeightsFileError, match=r'float32 array of shape \(3, 4\).*not a'):
        WeightsFile(path)
    np.save(path, np.array(['x', None], dtype=object), allow_pickle=True)  # not a dict
    with pytest.raises(WeightsFileError, match='object array'):
        WeightsFile(path)
    np.save(path, {'conv1_1': 'weights'}, allow_pickle=True)
    with pytest.raises(WeightsFileError, match="not a dict of layers.*'conv1_1' is a str"):
        WeightsFile(path)
    np.save(path, {'conv1_1': [np.zeros(3, np.int32)]}, allow_pickle=True)
    with pytest.raises(WeightsFileError, match='int32, expected floating point'):
        WeightsFile(path).array('conv1_1', 0, (3,))


def test_missing_layer_and_wrong_shape_messages(tmp_path):
    path = write_indexed_npy(str(tmp_path / 'w.npy'), _small())
    wf = WeightsFile(path)
    with pytest.raises(WeightsFileError) as info:
        wf.array('conv3_2', 0, VGG19_SHAPES['conv3_2'][0])
    message = str(info.value)
    assert path in message and "layer 'conv3_2' is missing" in message and '\n' not in message
    with pytest.raises(WeightsFileError) as info:
        wf.array('conv1_1', 0, (3, 3, 3, 32))
    message = str(info.value)
    assert ("wrong shape for layer 'conv1_1' weights: found [3, 3, 3, 64], "
            "expected [3, 3, 3, 32]" in message and path in message)


def test_unpickler_refuses_persistent_ids_and_stays_restricted():
    data = pickle.dumps({'a': 1}, protocol=2)
    assert wl.SafeUnpickler(io.BytesIO(data)).load() == {'a': 1}
    with pytest.raises(pickle.UnpicklingError):
        wl.SafeUnpickler(io.BytesIO(b'\x80\x02U\x01xQ.')).load()  # BINPERSID
    with pytest.raises(wl._Refused):  # pylint: disable=protected-access
        wl.SafeUnpickler(io.BytesIO(pickle.dumps(os.getcwd, protocol=2))).load()


# --------------------------------------------------------------------------
# Hostile files: bounded time and memory, one line
# --------------------------------------------------------------------------
HOSTILE_MESSAGES = {
    'billion_laughs': "layer 'conv1_1' holding non-arrays",
    'deep_tuple': 'tuples nested more than 64 deep',
    'codec_name': "_codecs.encode with error handler 'nope'",
    'int64_overflow_shape': r'shape \(4611686018427387904, 4\) is larger than any file',
    'sparse_4tb': r'reading all 5 arrays needs 4\.4 TB of memory, more than this process can have',
}


@pytest.mark.parametrize('name', sorted(HOSTILE_FILES))
def test_hostile_file_gives_one_line_within_1s_and_100mb(tmp_path, name):
    # Before: billion_laughs grew past 2.4 GB, deep_tuple crashed the
    # interpreter (SIGSEGV hashing the key), the others raised bare
    # LookupError / ValueError / MemoryError. Each runs in a fresh interpreter
    # under a 1 GB address-space cap, so a regression cannot take pytest down.
    try:
        path = HOSTILE_FILES[name](str(tmp_path / (name + '.npy')))
    except OSError as e:  # a file system without 4 TB sparse files
        pytest.skip('cannot write %s here: %s' % (name, e))
    results, failure = load_in_subprocess([path], memory_cap_mb=1024, case_seconds=10)
    assert failure is None, failure
    (result,) = results
    assert result['outcome'] == 'WeightsFileError', result
    message = result['message']
    assert message.startswith(path) and '\n' not in message, message
    assert re.search(HOSTILE_MESSAGES[name], message), message
    assert result['seconds'] < 1.0, result
    assert result['peak_bytes'] < 100 << 20, result


def _tiny_py2(tmp_path):
    return write_python2_npy(str(tmp_path / 'tiny.npy'),
                             {n: make_layer(n, seed=1, shapes=TINY_SHAPES) for n in TINY_SHAPES})


@pytest.mark.parametrize('key, kind', [
    (b')\x85', r'tuple \(a tuple of 1 items\)'),
    (b'G?\xf0\x00\x00\x00\x00\x00\x00', r'float \(1\.0\)'),
    (b'\x8a\x09' + b'\x01' * 9, r'int \(an int of 65 bits\)'), (b'N', 'NoneType')])
def test_dict_keys_are_str_or_int_before_they_are_hashed(tmp_path, key, kind):
    # Hashing a crafted key recursed in C (deep tuples) or collided (floats,
    # big ints); weights files only have str and small int keys.
    for body in (b'\x80\x02}' + key + b'K\x00s.', b'\x80\x02}(' + key + b'K\x00u.',
                 b'\x80\x02(' + key + b'K\x00d.'):
        with pytest.raises(WeightsFileError, match='a dict key of type %s' % kind):
            WeightsFile(write_object_npy(tmp_path / 'k.npy', body))


def test_sets_marks_and_lists_are_refused_when_nested_too_deep(tmp_path):
    for body, problem in ((b'\x80\x04\x8f.', 'a set'), (b'\x80\x04(K\x01\x91.', 'a set'),
                          (b'\x80\x02' + b'(' * 100000 + b'.', 'MARKs nested more than 64'),
                          (b'\x80\x02}U\x07conv1_1' + b']' * 5000 + b'a' * 4999 + b's.',
                           'lists nested more than 64 deep'),
                          (b'\x80\x02}' + b'U\x01k}' * 5000 + b's' * 5000 + b'.',
                           'dicts nested more than 64 deep'),
                          # nested through a list changed after it was put in
                          # another: caught when the tree is walked
                          (b'\x80\x02}U\x07conv1_1]r\x00\x00\x00\x00' + b''.join(
                              b'j' + struct.pack('<I', i) + b']r' + struct.pack('<I', i + 1)
                              + b'a0' for i in range(100)) + b's.',
                           'containers nested more than 64 deep')):
        with pytest.raises(WeightsFileError, match=problem) as info:
            WeightsFile(write_object_npy(tmp_path / 's.npy', body))
        assert '\n' not in str(info.value)


def test_self_containing_list_is_refused(tmp_path):
    body = b'\x80\x02}U\x07conv1_1]q\x00h\x00as.'  # L = []; L.append(L)
    with pytest.raises(WeightsFileError, match='a list that contains itself'):
        WeightsFile(write_object_npy(tmp_path / 'c.npy', body))


def test_shared_arrays_are_read_once_and_shared_payloads_refused(tmp_path):
    # {'fc8': L, 'fc9': L} where L is one [W, b] list: np.load gives one list
    # for both keys; so does load_weights, reading each array once.
    tiny = open(_tiny_py2(tmp_path), 'rb').read()
    start = tiny.index(b'U\x03fc8')
    shared = bytearray(tiny)
    shared[start:start + 5] = b'U\x03fc8'  # unchanged key, then memoize its list
    list_at = start + 5
    assert shared[list_at:list_at + 2] == b']('
    shared[list_at:list_at + 1] = b']q\xf0'
    shared[-5:-5] = b'U\x03fc9h\xf0'  # 'fc9': the same list, before SETITEMS
    path = tmp_path / 'shared.npy'
    path.write_bytes(bytes(shared))
    ref = np.load(str(path), encoding='latin1', allow_pickle=True).item()
    assert ref['fc9'] is ref['fc8']
    loaded = wl.load_weights(str(path))
    assert loaded['fc9'][0] is loaded['fc8'][0] and loaded['fc9'][1] is loaded['fc8'][1]
    np.testing.assert_array_equal(loaded['fc8'][0], ref['fc8'][0])
    # One payload (a 4 KiB bytes object, memoized) behind two arrays would let
    # a small file describe any number of copies: refused.
    payload = b'\x00' * 4096
    array = (b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R'
             b'(K\x01M\x00\x04\x85cnumpy\ndtype\nU\x02f4K\x00K\x01\x87R'
             b'(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89%stb')
    body = (b'\x80\x02}U\x07conv1_1](' + array % (b'B\x00\x10\x00\x00' + payload + b'q\x07')
            + array % b'h\x07' + b'es.')
    with pytest.raises(WeightsFileError, match='two arrays share one payload'):
        WeightsFile(write_object_npy(tmp_path / 'p.npy', body))


def test_dtype_is_a_copy_and_its_state_is_checked(tmp_path):
    # numpy.dtype('f4', 0, 0) is NumPy's shared float32; BUILD must not reach it.
    big_endian = (b'cnumpy\ndtype\nU\x02f4K\x00K\x00\x87R'
                  b'(K\x03U\x01>NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb')
    array = (b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R'
             b'(K\x01K\x02\x85' + big_endian + b'\x89C\x08' + np.arange(2, dtype='>f4').tobytes()
             + b'tb')
    path = write_object_npy(tmp_path / 'be.npy', b'\x80\x03}U\x07conv1_1]' + array + b'as.')
    np.testing.assert_array_equal(wl.load_weights(path)['conv1_1'][0], [0, 1])
    assert np.dtype('f4').byteorder == '=' and np.float32(1).dtype.isnative
    bad_states = [b'(K\x03U\x01<N}NJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb',  # fields
                  b'(K\x07U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb',  # version
                  b'(K\x03U\x01<NNNJ\xff\xff\xff\xffK\x03K\x00tb',  # alignment 3
                  b'K\x03b']  # not a tuple
    for state in bad_states:
        body = b'\x80\x02cnumpy\ndtype\nU\x02f4K\x00K\x01\x87R' + state + b'.'
        with pytest.raises(WeightsFileError, match='bad dtype state'):
            WeightsFile(write_object_npy(tmp_path / 'd.npy', body))
    for args in (b'U\x04f4,i', b']U\x01aU\x02f4\x86a', b'U\x02f4K\x02'):  # fields, align 2
        body = b'\x80\x02cnumpy\ndtype\n(' + args + b'tR.'
        with pytest.raises(WeightsFileError, match=r'numpy\.dtype\('):
            WeightsFile(write_object_npy(tmp_path / 'd.npy', body))


def test_lengths_beyond_the_file_are_refused_before_allocating(tmp_path):
    # A .npy 2.0 header may say 4 GB long; frames and strings may claim anything.
    header = b'\x93NUMPY\x02\x00' + struct.pack('<I', 2 ** 32 - 1) + b'{'
    path = tmp_path / 'h.npy'
    path.write_bytes(header)
    with pytest.raises(WeightsFileError, match='not a readable .npy header.*past the end'):
        WeightsFile(str(path))
    for body in (b'\x80\x04\x95' + struct.pack('<Q', 2 ** 62) + b'N.',  # FRAME
                 b'\x80\x04\x8d' + struct.pack('<Q', 2 ** 40) + b'abc',  # BINUNICODE8
                 b'\x80\x04\x8b' + struct.pack('<i', 2 ** 31 - 1)):  # LONG4
        with pytest.raises(WeightsFileError, match='ends early.*past the end'):
            WeightsFile(write_object_npy(tmp_path / 'l.npy', body))


def test_unterminated_header_is_corrupt(tmp_path):
    # Found by the fuzz test: NumPy's header parser raised tokenize.TokenError.
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (".ljust(117) + b'\n'
    path = tmp_path / 'u.npy'
    path.write_bytes(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header + b'\x80\x02.')
    with pytest.raises(WeightsFileError, match='not a readable .npy header: TokenError'):
        WeightsFile(str(path))


def test_names_in_messages_are_one_short_line(tmp_path):
    np.save(str(tmp_path / 'n.npy'), {'conv1_1\nfake line': [np.zeros(2, np.float32)]},
            allow_pickle=True)
    with pytest.raises(WeightsFileError) as info:
        WeightsFile(str(tmp_path / 'n.npy'))
    assert 'not a layer name' in str(info.value) and '\n' not in str(info.value)
    refused = b'\x80\x02c' + b'os\rx' * 100 + b'\nsystem\n.'
    with pytest.raises(WeightsFileError, match='refused') as info:
        WeightsFile(write_object_npy(tmp_path / 'r.npy', refused))
    message = str(info.value)
    assert len(message.splitlines()) == 1 and len(message) < 600, message
