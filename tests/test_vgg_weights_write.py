"""vgg_patch.weights.write: save_weights -- round trip through np.load and WeightsFile,
atomic, lean, permissions."""
import os

import numpy as np
import pytest

from vgg_patch import weights as wl
from vgg_patch.weights import WeightsFile

from vgg_fixtures import small_weights


def test_save_weights_round_trip_np_load_and_atomic(tmp_path):
    weights = small_weights()
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
