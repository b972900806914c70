"""Synchronous data-parallel training past one machine: a projection (issue 16).

Pure Python (VGG19's layer table from :mod:`vgg_patch.layout`, no TensorFlow).
From a measured compute time per image and a network's gradient bytes it gives,
for N workers on a network of a given bandwidth:

- **ring all-reduce** (worker-only, the collective engine):
  ``2 (N - 1) / N * G / bandwidth + 2 (N - 1) * HOP_LATENCY_S``, one packed
  buffer of G bytes, full-duplex links;
- **parameter servers** (P shards, ``SyncReplicasOptimizer``): each worker
  pushes G and then pulls G; the busiest shard receives N times its share and
  then sends it N times: ``2 * max(G, N * share) / bandwidth + 2 *
  HOP_LATENCY_S``. Shares: whole variables placed greedily (largest first on
  the least loaded shard, as ``GreedyLoadBalancingStrategy`` with
  ``byte_size_load_fn``), or every variable partitioned P ways (even);
- **scaling efficiency** = compute / (compute + non-overlapped communication),
  with no overlap, or with the communication overlapping the backward pass
  (``BACKWARD_SHARE`` of the step's compute; gradients go out layer by layer
  as backpropagation produces them);
- the **per-worker batch at which communication hides** behind the backward
  pass: the smallest b with ``BACKWARD_SHARE * b * seconds_per_image >=
  communication``.

Assumptions are the module constants; docs/distributed.md states them with the
figures.
"""
import math

from harness import format_table
from vgg_patch import layout

#: Bandwidths of the projected networks, Gb/s.
NETWORKS_GBPS = (10, 25, 100)
#: Worker counts projected.
WORKERS = (2, 4, 8, 16, 32, 64)
#: One message hop's latency over TCP/gRPC in a datacentre (assumed, not measured).
HOP_LATENCY_S = 100e-6
#: Share of a training step's compute spent in the backward pass (backward is
#: about twice the forward's FLOPs).
BACKWARD_SHARE = 2.0 / 3.0
#: float32 gradients.
BYTES_PER_VALUE = 4
#: ResNet-50's parameters (He et al. 2016; Keras' ResNet50: 25,636,712).
RESNET50_PARAMS = 25636712
#: Forward multiply-adds per 224 px image, in billions: ResNet-50 and VGG19 (He
#: et al. 2016, "Deep Residual Learning", Sec. 4.1 and Table 1).
RESNET50_GMACS, VGG19_GMACS = 3.8, 19.6


def cbam_tensors(channels=layout.POOL5_CHANNELS, ratio=0.5):
    """Sizes of the CBAM block's trainable tensors after pool5: the shared MLP
    (C -> C*ratio -> C, with biases), the 7x7 spatial conv over [mean, max]
    (no bias), its batch norm's beta and gamma."""
    hidden = int(channels * ratio)
    return [channels * hidden, hidden, hidden * channels, channels, 7 * 7 * 2, 1, 1]


def vgg19_cbam_tensors(size=layout.IMAGENET_SIZE, classes=layout.IMAGENET_CLASSES):
    """Sizes of VGG19 + CBAM's trainable tensors (values, file order, CBAM last)
    for ``size`` px images and ``classes`` classes."""
    height, width = layout.pool5_size(size, size)
    shapes = layout.layer_shapes(height * width * layout.POOL5_CHANNELS, classes)
    sizes = [math.prod(shape) for pair in shapes.values() for shape in pair]
    return sizes + cbam_tensors()


def ring_allreduce_bytes(grad_bytes, workers):
    """Bytes each worker sends (and receives) in a ring all-reduce."""
    return 2.0 * (workers - 1) / workers * grad_bytes


def ring_allreduce_seconds(grad_bytes, workers, gbps, hop_latency=HOP_LATENCY_S):
    """Seconds of one ring all-reduce of ``grad_bytes`` over ``workers``."""
    if workers < 2:
        return 0.0
    return (ring_allreduce_bytes(grad_bytes, workers) * 8 / (gbps * 1e9)
            + 2 * (workers - 1) * hop_latency)


def ps_shard_loads(tensor_bytes, shards, partitioned=False):
    """Bytes held by each of ``shards`` ps tasks: every tensor split evenly
    (``partitioned``), or whole tensors placed greedily, largest first on the
    least loaded shard."""
    if shards < 1:
        raise ValueError("shards must be >= 1, got %r" % (shards,))
    if partitioned:
        return [sum(tensor_bytes) / shards] * shards
    loads = [0] * shards
    for size in sorted(tensor_bytes, reverse=True):
        loads[loads.index(min(loads))] += size
    return loads


def ps_seconds(tensor_bytes, workers, shards, gbps, partitioned=False,
               hop_latency=HOP_LATENCY_S):
    """Seconds of one synchronous ps step's exchange: push G, then pull G; the
    busiest shard's link carries ``workers`` times its share each way."""
    grad_bytes = sum(tensor_bytes)
    busiest = max(ps_shard_loads(tensor_bytes, shards, partitioned))
    return 2 * max(grad_bytes, workers * busiest) * 8 / (gbps * 1e9) + 2 * hop_latency


def efficiency(compute_s, comm_s, overlap=0.0):
    """compute / (compute + communication not hidden behind ``overlap`` x compute)."""
    exposed = max(0.0, comm_s - overlap * compute_s)
    return compute_s / (compute_s + exposed)


def hiding_batch(seconds_per_image, comm_s, overlap=BACKWARD_SHARE):
    """Smallest per-worker batch whose backward pass hides ``comm_s``."""
    return max(1, math.ceil(comm_s / (overlap * seconds_per_image) - 1e-9))


def networks(seconds_per_image):
    """[(name, tensor bytes or None, gradient bytes, seconds per image)]:
    VGG19 + CBAM at 224 px, its compute as measured; ResNet-50 by parameter
    count only (no tensor list), its compute scaled by multiply-adds."""
    vgg = [BYTES_PER_VALUE * n for n in vgg19_cbam_tensors()]
    return [("VGG19 + CBAM, 224 px", vgg, sum(vgg), seconds_per_image),
            ("ResNet-50, 224 px", None, BYTES_PER_VALUE * RESNET50_PARAMS,
             seconds_per_image * RESNET50_GMACS / VGG19_GMACS)]


def _cell(compute_s, comm_s):
    return "%.0f%% / %.0f%%" % (100 * efficiency(compute_s, comm_s),
                                100 * efficiency(compute_s, comm_s, BACKWARD_SHARE))


def efficiency_rows(tensor_bytes, grad_bytes, seconds_per_image, batch, speedup=1):
    """Rows (dicts) of scaling efficiency, "no overlap / backward overlap", per
    engine and bandwidth, one column per worker count, for a worker ``speedup``
    times faster per image. Without ``tensor_bytes`` (None) the ps rows assume
    even shares."""
    compute = batch * seconds_per_image / speedup
    even = tensor_bytes is None
    tensors = [grad_bytes] if even else tensor_bytes
    worker = "this machine" if speedup == 1 else "%dx faster" % speedup
    rows = []
    for gbps in NETWORKS_GBPS:
        engines = [("ring all-reduce", lambda n: ring_allreduce_seconds(grad_bytes, n, gbps)),
                   ("ps, 1 shard", lambda n: ps_seconds(tensors, n, 1, gbps)),
                   ("ps, N shards, whole variables",
                    lambda n: ps_seconds(tensors, n, n, gbps)),
                   ("ps, N shards, partitioned",
                    lambda n: ps_seconds(tensors, n, n, gbps, partitioned=True))]
        for name, comm in engines[:2] + engines[3 if even else 2:]:
            row = {"worker": worker, "engine": name, "gbps": gbps}
            row.update({"n%d" % n: _cell(compute, comm(n)) for n in WORKERS})
            rows.append(row)
    return rows


def hiding_rows(grad_bytes, seconds_per_image, speedups=(1,)):
    """Per-worker batch hiding the ring all-reduce (N = 64) for each bandwidth,
    for a worker ``speedup`` times faster per image."""
    rows = []
    for speedup in speedups:
        row = {"worker": "this machine" if speedup == 1 else "%dx faster per image" % speedup}
        for gbps in NETWORKS_GBPS:
            comm = ring_allreduce_seconds(grad_bytes, max(WORKERS), gbps)
            row["g%d" % gbps] = "%d (%.0f ms)" % (
                hiding_batch(seconds_per_image / speedup, comm), 1000 * comm)
        rows.append(row)
    return rows


#: Per-worker batch of the efficiency tables (vgg19-cbam-train's default batch).
BATCH = 16
#: Workers faster per image than this machine's CPUs, for the GPU rows (assumed).
GPU_SPEEDUPS = (50, 100)


def render(seconds_per_image, batch=BATCH):
    """Markdown: efficiency per engine, bandwidth and N for each network (this
    machine's compute, and a worker GPU_SPEEDUPS[-1] times faster), and the
    per-worker batch that hides the ring all-reduce."""
    parts = []
    for name, tensors, grad, spi in networks(seconds_per_image):
        cols = [("worker", "worker"), ("engine", "engine"), ("gbps", "Gb/s")] + [
            ("n%d" % n, "N = %d" % n) for n in WORKERS]
        rows = [row for speedup in (1, GPU_SPEEDUPS[-1])
                for row in efficiency_rows(tensors, grad, spi, batch, speedup)]
        parts.append("#### %s: %.0f MB of gradients, %.3f s/image, batch %d per worker\n\n"
                     "Scaling efficiency, no overlap / overlapped with the backward pass:"
                     "\n\n%s" % (name, grad / 1e6, spi, batch, format_table(rows, cols)))
        cols = [("worker", "worker")] + [("g%d" % g, "%d Gb/s" % g) for g in NETWORKS_GBPS]
        parts.append("Per-worker batch hiding the ring all-reduce (N = %d) behind the "
                     "backward pass (all-reduce time):\n\n%s" % (
                         max(WORKERS), format_table(
                             hiding_rows(grad, spi, (1,) + GPU_SPEEDUPS), cols)))
    return "\n\n".join(parts)


def main(argv=None):
    """``python bench/cluster_projection.py SECONDS_PER_IMAGE [--batch B]``:
    prints the projection tables for a compute time per 224 px image (e.g. the
    ``train`` case's step time over its batch, docs/benchmarks.md)."""
    import argparse  # pylint: disable=import-outside-toplevel
    parser = argparse.ArgumentParser(prog="python bench/cluster_projection.py",
                                     description=main.__doc__.split("\n\n")[0])
    parser.add_argument("seconds_per_image", type=float,
                        help="VGG19 + CBAM training compute per 224 px image, seconds")
    parser.add_argument("--batch", type=int, default=BATCH, help="per-worker batch")
    args = parser.parse_args(argv)
    if not args.seconds_per_image > 0 or args.batch < 1:
        parser.error("seconds_per_image must be > 0 and --batch >= 1, got %r and %r"
                     % (args.seconds_per_image, args.batch))
    print(render(args.seconds_per_image, args.batch))
    return 0


if __name__ == "__main__":
    import sys  # pylint: disable=import-outside-toplevel
    sys.exit(main())
