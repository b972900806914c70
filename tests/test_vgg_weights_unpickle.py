"""vgg_patch.weights.unpickle: the security boundary -- SafeUnpickler refuses what a
weights file never needs, its work bounded by the file."""
import io
import os
import struct
import pickle
import re

import numpy as np
import pytest

from vgg_patch import weights as wl
from vgg_patch.weights import WeightsFile, WeightsFileError, stand_ins, unpickle

from vgg_fixtures import HOSTILE_FILES, load_in_subprocess, write_object_npy


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
    assert stand_ins.latin1_encode.__defaults__ == ('utf-8', 'strict')


def test_unpickler_refuses_persistent_ids_and_stays_restricted():
    data = pickle.dumps({'a': 1}, protocol=2)
    assert unpickle.SafeUnpickler(io.BytesIO(data)).load() == {'a': 1}
    with pytest.raises(pickle.UnpicklingError):
        unpickle.SafeUnpickler(io.BytesIO(b'\x80\x02U\x01xQ.')).load()  # BINPERSID
    with pytest.raises(unpickle.Refused):
        unpickle.SafeUnpickler(io.BytesIO(pickle.dumps(os.getcwd, protocol=2))).load()


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
