"""vgg_patch.weights.file: read_npy_tree, WeightsFile, load_weights -- the three formats,
bad files, messages."""
import struct
import pickletools

import numpy as np
import pytest
from numpy.lib import format as npy_format

from vgg_patch import weights as wl
from vgg_patch.weights import WeightsFile, WeightsFileError

from vgg_fixtures import (TINY_SHAPES, VGG19_SHAPES, make_layer, small_weights,
                          write_indexed_npy, write_object_npy, write_python2_npy)


def _opcodes(path):
    with open(path, 'rb') as f:
        npy_format.read_magic(f)
        npy_format.read_array_header_1_0(f)
        return [(op.name, arg) for op, arg, _ in pickletools.genops(f)]


def test_python2_file_is_really_python2_pickle_and_loads(tmp_path):
    weights = small_weights()
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
    weights = small_weights()
    path = write_indexed_npy(str(tmp_path / 'tfvgg.npy'), weights)
    wf = WeightsFile(path)
    assert wf.format == 'indexed'
    for name, (w, b) in weights.items():
        np.testing.assert_array_equal(wf.array(name, 0, w.shape).read(), w)
        np.testing.assert_array_equal(wf.array(name, 1, b.shape).read(), b)


def test_missing_file_points_to_the_download(tmp_path):
    path = str(tmp_path / 'vgg19.npy')
    with pytest.raises(WeightsFileError) as info:
        WeightsFile(path)
    message = str(info.value)
    assert path in message and 'https://github.com/machrisaa/tensorflow-vgg' in message
    assert 'download' in message and '\n' not in message


def test_truncated_files_say_download_again(tmp_path):
    full = open(write_python2_npy(str(tmp_path / 'full.npy'), small_weights()), 'rb').read()
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
    path = write_python2_npy(str(tmp_path / 'f.npy'), small_weights())
    full = bytearray(open(path, 'rb').read())
    start = full.index(b'\x80\x02')
    garbage = np.random.RandomState(seed).bytes(38).replace(b'c', b'x').replace(b'i', b'x')
    full[start + 2:start + 40] = garbage
    path = tmp_path / 'corrupt.npy'
    path.write_bytes(bytes(full))
    with pytest.raises(WeightsFileError, match='truncated or corrupt.*download it again'):
        WeightsFile(str(path))


@pytest.mark.parametrize('length', [2 ** 40, 2 ** 60, 2 ** 64 - 1])
def test_payload_length_beyond_any_file_is_corrupt_not_an_oserror(tmp_path, length):
    path = write_python2_npy(str(tmp_path / 'f.npy'), small_weights())
    full = bytearray(open(path, 'rb').read())
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
    path = write_indexed_npy(str(tmp_path / 'w.npy'), small_weights())
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


def _tiny_py2(tmp_path):
    return write_python2_npy(str(tmp_path / 'tiny.npy'),
                             {n: make_layer(n, seed=1, shapes=TINY_SHAPES) for n in TINY_SHAPES})


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
