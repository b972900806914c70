"""The ``cluster`` case: the projection against hand-computed values, the
table's bookkeeping, and a --quick run of the real processes.

The smoke run starts its processes in the TensorFlow behaviour of
``TEST_TF_BEHAVIOR`` (``v1``: every task after ``disable_v2_behavior()``, as
tests/conftest.py does for the suite's subprocesses).
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import case_cluster  # noqa: E402
import cluster_projection as projection  # noqa: E402
import harness  # noqa: E402
from vgg_patch import layout  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_ring_allreduce_bytes_and_seconds():
    assert projection.ring_allreduce_bytes(100, 2) == 100      # 2 * 1/2 * 100
    assert projection.ring_allreduce_bytes(100, 4) == 150      # 2 * 3/4 * 100
    # 1.25 GB over 10 Gb/s: 2 * 1/2 * 1.25e9 * 8 / 1e10 = 1 s; + 2 * (2 - 1) hops of 1 ms
    assert projection.ring_allreduce_seconds(1.25e9, 2, 10, hop_latency=0) == pytest.approx(1.0)
    assert projection.ring_allreduce_seconds(1.25e9, 2, 10, hop_latency=1e-3) == \
        pytest.approx(1.002)
    # 4 workers at 25 Gb/s: 1.5 * 1e9 * 8 / 25e9 = 0.48 s, + 6 hops of 0.1 ms
    assert projection.ring_allreduce_seconds(1e9, 4, 25) == pytest.approx(0.4806)
    assert projection.ring_allreduce_seconds(1e9, 1, 25) == 0.0


def test_ps_shards_and_seconds():
    assert projection.ps_shard_loads([5, 4, 3, 2], 2) == [7, 7]   # 5+2, 4+3
    assert projection.ps_shard_loads([6, 1, 1], 2) == [6, 2]      # one tensor dominates
    assert projection.ps_shard_loads([6, 1, 1], 2, partitioned=True) == [4, 4]
    with pytest.raises(ValueError, match="shards must be >= 1, got 0"):
        projection.ps_shard_loads([1], 0)
    # 4 workers, 2 shards, G = 8 GB with a 6 GB tensor: the busiest shard carries
    # 4 x 6 GB each way: 2 * 24e9 * 8 / 100e9 = 3.84 s, + 2 hops of 0.1 ms.
    gb = 1e9
    assert projection.ps_seconds([6 * gb, gb, gb], 4, 2, 100) == pytest.approx(3.8402)
    # Partitioned, 4 shards: 4 x 2 GB = 8 GB = G: 2 * 8e9 * 8 / 100e9 = 1.28 s.
    assert projection.ps_seconds([6 * gb, gb, gb], 4, 4, 100, partitioned=True,
                                 hop_latency=0) == pytest.approx(1.28)
    # One worker alone still pushes and pulls G through its own link.
    assert projection.ps_seconds([8 * gb], 1, 1, 100, hop_latency=0) == pytest.approx(1.28)


def test_efficiency_and_hiding_batch():
    assert projection.efficiency(1.0, 0.5) == pytest.approx(2 / 3)
    assert projection.efficiency(1.0, 0.5, overlap=2 / 3) == 1.0
    assert projection.efficiency(1.0, 1.0, overlap=0.5) == pytest.approx(1 / 1.5)
    # 0.1 s/image, backward 2/3 of it: 3 images hide 0.2 s exactly, 4 hide 0.21 s.
    assert projection.hiding_batch(0.1, 0.2) == 3
    assert projection.hiding_batch(0.1, 0.21) == 4
    assert projection.hiding_batch(0.1, 0.0) == 1


def test_gradient_sizes_follow_the_layer_table():
    assert sum(projection.cbam_tensors()) == 263012        # MLP 512-256-512, 7x7x2 conv, BN
    tensors = projection.vgg19_cbam_tensors()
    assert sum(tensors) == layout.PARAMS + 263012 == 143930252
    assert max(tensors) == 25088 * 4096                    # fc6's matrix: 102.8 M
    assert sum(projection.vgg19_cbam_tensors(32, 10)) == 39210926


def test_projection_tables_render():
    text = projection.render(1.0)
    assert "#### VGG19 + CBAM, 224 px: 576 MB of gradients, 1.000 s/image" in text
    assert "#### ResNet-50, 224 px: 103 MB of gradients, 0.194 s/image" in text
    # ResNet-50 has no tensor list: no "whole variables" row for it.
    assert text.count("ps, N shards, whole variables") == 6
    assert "| this machine | 2 (919 ms) |" in text   # 0.919 s / (2/3 x 1 s) = 1.4


def test_projection_command(capsys):
    assert projection.main(["1.0", "--batch", "8"]) == 0
    assert "1.000 s/image, batch 8 per worker" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        projection.main(["0"])
    assert "seconds_per_image must be > 0" in capsys.readouterr().err


class _Grad:
    def __init__(self, size):
        self.size = size
        self.shape = type("Shape", (), {"num_elements": lambda _: size})()


class _Collectives:
    def __init__(self):
        self.calls = []

    def all_reduce(self, tensors):
        self.calls.append([t.size for t in tensors])
        return ["reduced %d" % t.size for t in tensors]


def test_buckets_fill_in_backprop_order_and_keep_positions():
    import cluster_task
    grads, fake = [_Grad(n) for n in (10, 1, 5, 3)], _Collectives()
    out = cluster_task.reduce_in_buckets(fake, grads, bucket_bytes=24)
    assert fake.calls == [[3, 5], [1, 10]]        # 12 + 20 bytes >= 24, then the rest
    assert out == ["reduced 10", "reduced 1", "reduced 5", "reduced 3"]


def _series(steps):
    return {"step_s": steps, "lo_bytes": [2e8, 2e8], "socket_bytes": [1e8, 1e8],
            "loss": [1.0, 1.0]}


def test_measured_rows_pair_each_round_with_the_compute_only_run():
    names = [c[0] for c in case_cluster.CONTESTANTS]
    res = {"batch": 16, "batch224": 4, "grad_bytes": 100e6, "series": {
        names[0]: _series([1.0, 2.0]), names[1]: _series([0.5, 1.0]),
        names[2]: _series([0.75, 1.5]), names[3]: _series([0.5, 1.0]),
        names[-1]: _series([1.5, 1.0])}}
    rows = {r["what"]: r for r in case_cluster.measured_rows(res)}
    assert rows[names[2]]["comm_ms"] == "375 [312, 438]"   # 250 and 500 ms
    # 1e8 socket bytes / 2 workers * 8 bits over the median 0.375 s: 1.07 Gb/s
    assert rows[names[2]]["gbps"] == "1.1"
    assert rows[names[3]]["comm_ms"] == "0 [0, 0]"
    assert rows[names[-1]]["comm_ms"] == "500 [250, 750]"   # 1000 and 0 ms
    assert "comm_ms" not in rows[names[0]]
    assert rows[names[0]]["img_s"] == "12 [10, 14]"        # 16 / 1 s and 16 / 2 s
    assert rows[names[2]]["theory_mb"] == "200.0"          # 2 workers x G
    assert rows[names[3]]["theory_mb"] == "200.0"
    assert rows[names[-1]]["theory_mb"] == "400.0"          # 2 workers x (push + pull)
    assert rows[names[1]]["batch"] == "16 (8 each)"
    assert rows[names[-1]]["threads"] == "2 processes x 1+1 (+ ps 1+1)"


def test_quick_run_exchanges_the_gradients_and_stops_every_process(monkeypatch):
    behavior = os.environ.get("TEST_TF_BEHAVIOR", "v2") or "v2"
    path = [_ROOT] + ([os.path.join(_ROOT, "tests", "v1_behavior")] if behavior == "v1" else [])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        path + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    monkeypatch.setenv("TEST_TF_BEHAVIOR", behavior)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py")
    res, err, _ = harness.run_worker(script, "cluster", ["--quick"], timeout=900)
    assert err is None, err
    grad = 4 * sum(projection.vgg19_cbam_tensors(32, 10))
    assert res["grad_bytes"] == grad
    assert res["behavior"] == {"single": behavior, "ps 0": None, "worker 0": behavior,
                               "worker 1": behavior}
    allreduce = res["series"]["2 workers, collective all-reduce"]
    for variant in ("per tensor", "in 25 MiB packs"):
        got = res["series"]["2 workers, collective all-reduce " + variant]
        assert 2 * grad <= got["socket_bytes"][0] < 2.1 * grad
    ps = res["series"]["1 ps + 2 workers, SyncReplicasOptimizer"]
    # Each worker sends G in a 2-worker ring, and pushes + pulls G through the ps.
    assert 2 * grad <= allreduce["socket_bytes"][0] < 2.1 * grad
    assert 4 * grad <= ps["socket_bytes"][0] < 4.4 * grad
    assert res["series"]["2 workers, no exchange (compute only)"]["socket_bytes"][0] < 1e6
    for name, pid in res["pids"].items():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert res["exit"][name] is not None, name
    assert "| 2 workers, collective all-reduce |" in case_cluster.render(res)
