"""Building VGG19+CBAM from a full-size (548 MB) original-format vgg19.npy.

The measurement is the benchmark's own (``bench/run.py --only build``, see
bench/case_build.py), run here in the suite's TF behaviour: a baseline process
(TensorFlow and vgg_patch imported, a session that has run one op) and a
process that builds the network, initialises it and computes the first output
of one 224 x 224 image. Each reports its peak RSS; their difference is what the
network costs. Targets: peak beyond the baseline <= 1.5 x the file, GraphDef
< 1 MB.

With ``--tf-behavior=v1`` both processes start with ``disable_v2_behavior()``;
each reports the behaviour TensorFlow is really in and the kind of the
network's variables, and the test checks both: under v1 a ``RefVariable``
would copy each buffer read from the file.
"""
import os
import sys

import pytest

from vgg_fixtures import full_size_npy

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'bench')
sys.path.insert(0, BENCH)
import harness  # noqa: E402  pylint: disable=wrong-import-position


def _measure(variant, npy, behavior):
    result, error, _ = harness.run_worker(
        os.path.join(BENCH, 'run.py'), 'build',
        ['--variant', variant, '--npy', npy, '--tf-behavior', behavior], timeout=600)
    assert error is None, error
    return result['row']


@pytest.mark.slow
def test_build_from_full_size_npy_wall_time_and_peak_memory(tmp_path_factory, record_property,
                                                           tf_behavior):
    path = full_size_npy(tmp_path_factory)
    file_mb = os.path.getsize(path) / 2**20
    baseline = _measure('baseline', path, tf_behavior)
    row = _measure('vgg_patch', path, tf_behavior)
    beyond_mb = (row['peak_bytes'] - baseline['peak_bytes']) / 2**20
    for key, value in dict(row, peak_beyond_baseline_mb=beyond_mb, file_mb=file_mb).items():
        record_property(key, value)
    print('\nvgg19.npy (%.0f MB) build+init+first output: %.1f s, %.0f MB beyond the '
          'baseline (%.2fx the file), GraphDef %d bytes'
          % (file_mb, row['first_s'], beyond_mb, beyond_mb / file_mb, row['graphdef_bytes']))
    assert baseline['behavior'] == row['behavior'] == tf_behavior  # measured in the suite's
    assert row['variables'] == 'resource'
    assert file_mb > 540
    assert abs(row['prob_sum'] - 1.0) < 1e-4
    assert row['graphdef_bytes'] < 1 << 20
    assert beyond_mb <= 1.5 * file_mb, row
