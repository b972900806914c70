"""vgg_patch.weights.lazy: LazyArray -- parsing reads no weights; each array is read on
demand, converted, and checked against a changed file."""
import os

import numpy as np
import pytest

from vgg_patch import weights as wl
from vgg_patch.weights import WeightsFile, WeightsFileError, stand_ins

from vgg_fixtures import small_weights, write_python2_npy


def test_parsing_is_lazy_and_reads_each_array_on_demand(tmp_path):
    weights = small_weights()
    path = write_python2_npy(str(tmp_path / 'py2.npy'), weights)
    wf = WeightsFile(path)
    big = wf.layers['conv1_1'][0]
    assert big.nbytes >= wl.LAZY_MIN_BYTES
    # the payload was not read: it is still only a (offset, length) record
    assert isinstance(big._data, stand_ins.LazyBytes)  # pylint: disable=protected-access
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
        data = lazy._data  # pylint: disable=protected-access
        assert isinstance(data, stand_ins.LazyBytes), name
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


def test_file_changed_after_parsing_is_reported(tmp_path):
    path = write_python2_npy(str(tmp_path / 'w.npy'), small_weights())
    wf = WeightsFile(path)
    with open(path, 'r+b') as f:  # cut it short after parsing
        f.truncate(os.path.getsize(path) - 100)
    with pytest.raises(WeightsFileError, match='changed since the network was built'):
        wf.layers['conv1_1'][0].read()
