"""vgg_patch.layout: VGG19's table, shapes and parameter count, synthetic files."""
import numpy as np

from vgg_patch import layout
from vgg_patch.weights import WeightsFile


def test_table_is_vgg19_configuration_e():
    # 2-2-4-4-4 convolutions, channel widths doubling from 64 to 512.
    stages = [sum(1 for name, _, _ in layout.CONV_LAYERS if name[4] == str(s))
              for s in range(1, 6)]
    assert stages == [2, 2, 4, 4, 4]
    for (_, _, cout), (_, cin, _) in zip(layout.CONV_LAYERS, layout.CONV_LAYERS[1:]):
        assert cin == cout
    assert list(layout.LAYER_SHAPES) == [n for n, _, _ in layout.CONV_LAYERS] + list(
        layout.FC_LAYERS)
    assert layout.LAYER_SHAPES['fc6'] == ((7 * 7 * 512, 4096), (4096,))
    assert layout.LAYER_SHAPES['fc8'] == ((4096, 1000), (1000,))
    assert layout.WINOGRAD_LAYERS == tuple(
        'conv%d_%d' % (s, i) for s in (3, 4, 5) for i in (1, 2, 3, 4))
    assert set(layout.KERAS_NAMES) == set(layout.LAYER_SHAPES)


def test_parameter_count_is_the_formula_of_the_table():
    conv = sum(9 * cin * cout + cout for _, cin, cout in layout.CONV_LAYERS)
    fc = 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert layout.PARAMS == conv + fc == 143667240
    shapes = layout.layer_shapes(fc6_input=2 * 2 * 512, num_classes=10)
    assert layout.param_count(shapes) == (conv + 2048 * 4096 + 4096 + 4096 * 4097
                                          + 4096 * 10 + 10)


def test_pool5_size_is_five_same_poolings():
    assert layout.pool5_size(224, 224) == (7, 7)
    assert layout.pool5_size(33, 64) == (2, 2)
    assert layout.pool5_size(1, 1) == (1, 1)


def test_synthetic_arrays_are_deterministic_and_he_scaled():
    w = layout.synthetic_array('conv3_1', 0, seed=1)
    np.testing.assert_array_equal(w, layout.synthetic_array('conv3_1', 0, seed=1))
    assert not np.array_equal(w, layout.synthetic_array('conv3_1', 0, seed=2))
    assert w.shape == (3, 3, 128, 256) and w.dtype == np.float32
    assert abs(w.std() - np.sqrt(2.0 / (9 * 128))) < 0.01 * np.sqrt(2.0 / (9 * 128))
    b = layout.synthetic_array('conv3_1', 1, seed=1)
    assert b.shape == (256,) and abs(b.std() - 0.01) < 0.002


def test_synthetic_file_has_vgg19_npy_layout(tmp_path):
    shapes = {'conv1_1': ((3, 3, 3, 64), (64,)), 'fc8': ((64, 5), (5,))}
    path = layout.write_synthetic_npy(str(tmp_path / 'w.npy'), seed=4, shapes=shapes)
    tree = np.load(path, allow_pickle=True).item()  # our own file: trusted here
    assert list(tree) == list(shapes)
    expected = layout.synthetic_weights(seed=4, shapes=shapes)
    for name, (w, b) in expected.items():
        assert isinstance(tree[name], list)
        np.testing.assert_array_equal(tree[name][0], w)
        np.testing.assert_array_equal(tree[name][1], b)
    wf = WeightsFile(path)
    np.testing.assert_array_equal(wf.array('fc8', 0, (64, 5)).read(), expected['fc8'][0])
