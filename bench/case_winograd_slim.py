"""Case ``winograd_slim``: does Winograd F(2x2, 3x3) pay in slim's networks?

The 3x3 convolutions of tf-slim's ResNet-50 (v1 and v2 alike: each unit's
``conv2``, the only 3x3 of a bottleneck) and a few of slim's VGG-16/19, timed
like case ``winograd`` (:func:`case_winograd.time_pairs`): the direct
convolution against :func:`vgg_patch.winograd.conv2d_3x3`, interleaved round
by round in one graph and Session, forward at batch 1, 16 and 32 (inference)
and forward + backward (the input's and the filters' gradients) at batch 16
and 32 (training; the trainer's batch is 32, the predictor's 16).

ResNet: a block's stride-1 units run at the block's input side
(``ceil(size / 4)`` for block1, halved per block after it). The last unit of
blocks 1-3 has ``conv2`` at stride 2, which F(2x2, 3x3) does not compute (it
would compute the stride-1 output and keep a quarter of it): those stay
direct, and are not timed. Counted per ResNet-50: block1 2 of its 3 units,
block2 3 of 4, block3 5 of 6, block4 all 3.

Then the whole network: a ResNet-50 v1 training step at the demo's 64 px,
batch 32, direct against the rule's Winograd blocks and all four
(:func:`time_network`).

VGG: slim's vgg_16/vgg_19 have VGG19's conv shapes (224 px only: fc6 fixes
the size), which case ``winograd`` measures in full at batch 16; here three
of them at 224 px check that its rule holds at the trainer's batch 32.
"""
import logging
import os

import case_winograd
import harness
from vgg_patch import fastpath

_LOG = logging.getLogger("bench")

#: (name, channels, stride-1 units in ResNet-50, block): conv2 of each block.
RESNET_CONV2 = (("block1/conv2", 64, 2, 1), ("block2/conv2", 128, 3, 2),
                ("block3/conv2", 256, 5, 3), ("block4/conv2", 512, 3, 4))
#: (name, channels in, out, VGG stage): the slim VGG layers checked at 224 px.
VGG_CHECKS = (("vgg/conv3_2", 256, 256, 3), ("vgg/conv4_2", 512, 512, 4),
              ("vgg/conv5_1", 512, 512, 5))
SIZES = (64, 112, 160, 224)
QUICK_SIZES = (64,)
MODES = (("forward", 1), ("forward", 16), ("forward", 32), ("train", 16), ("train", 32))
VGG_MODES = (("forward", 16), ("train", 32))


def _groups(quick):
    """[(label, size, mode, batch, [(name, side, in, out, count)])]."""
    out = []
    if not quick:
        shapes = [(name, case_winograd.side_of(224, stage), cin, cout, 1)
                  for name, cin, cout, stage in VGG_CHECKS]
        out += [("vgg", 224, mode, batch, shapes) for mode, batch in VGG_MODES]
    for size in QUICK_SIZES if quick else SIZES:
        shapes = [(name, fastpath.resnet_side(size, "block%d" % block), ch, ch, count)
                  for name, ch, count, block in RESNET_CONV2]
        for mode, batch in MODES:
            if quick and (mode, batch) != ("train", 32):
                continue
            out.append(("resnet_v1_50", size, mode, batch, shapes))
    return out


def _network_step(tf, model, size, batch, winograd):
    """``(session, step)``: one SGD step of ``model`` (SlimNetwork, with
    ``winograd``'s convolutions on Winograd) at ``size`` px, in a graph of its
    own; the step fetches the loss, so nothing is pruned."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from vgg_patch.training.slim_network import SlimNetwork  # pylint: disable=import-outside-toplevel
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        images = tf.constant(np.random.RandomState(0).rand(batch, size, size, 3)
                             .astype(np.float32))
        labels = tf.constant(np.arange(batch) % 10)
        out = SlimNetwork(model, 10, winograd=winograd).build(images, True)
        loss = tf.compat.v1.losses.sparse_softmax_cross_entropy(labels, out.logits)
        with tf.control_dependencies(tf.compat.v1.get_collection(
                tf.compat.v1.GraphKeys.UPDATE_OPS)):
            train = tf.compat.v1.train.GradientDescentOptimizer(1e-3).minimize(loss)
        init = tf.compat.v1.global_variables_initializer()
    sess = tf.compat.v1.Session(graph=graph)
    sess.run(init)
    sess.run([train, loss])  # warm-up (XLA compiles Winograd's transforms)
    return sess, lambda: sess.run([train, loss])


def time_network(tf, model, size, batch, reps, ways=None):
    """Whole training steps of ``model``, direct and with Winograd in each of
    ``ways`` (tuples of blocks; default: the rule's), interleaved; returns
    one row per way (per-round times, the round-by-round speed-up's quartiles)."""
    ways = [()] + list(ways or [fastpath.resnet_winograd_blocks(size, True)])
    steps = {way: _network_step(tf, model, size, batch, way) for way in ways}
    times = harness.interleaved({way: fn for way, (_, fn) in steps.items()}, 0, reps)
    for sess, _ in steps.values():
        sess.close()
    rows = []
    for way in ways[1:]:
        low, mid, high = case_winograd.quartiles(
            [d / w for d, w in zip(times[()], times[way])])
        rows.append({"model": model, "size": size, "batch": batch, "winograd": list(way),
                     "direct_s": times[()], "winograd_s": times[way], "speedup": mid,
                     "q1": low, "q3": high})
    return rows


def run(args):
    """Every group; returns the rows and the load average before each group."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    reps = harness.repeats(args, 7, 1)
    rows, loads = [], []
    for net, size, mode, batch, shapes in _groups(args.quick):
        loads.append("%s %d px %s b%d: %s" % (net, size, mode, batch,
                                              harness.machine_info().get("loadavg")))
        timed = case_winograd.time_pairs(tf, [s[:4] for s in shapes], mode, batch, reps)
        for name, _, _, _, count in shapes:
            rows.append(dict(timed[name], net=net, size=size, count=count))
            harness.emit_row(rows[-1])
    network = []
    if not args.quick:  # the demo's size and batch, the rule's blocks and all four
        loads.append("network 64 px train b32: %s" % harness.machine_info().get("loadavg"))
        network = time_network(tf, "resnet_v1_50", 64, 32, 2 * reps,
                               [fastpath.resnet_winograd_blocks(64, True),
                                fastpath.RESNET_BLOCKS])
    return {"rows": rows, "network": network, "loadavg": loads,
            "peak_rss_mib": harness.mib(harness.peak_rss_bytes())}


def render(res):
    """Markdown: one row per (layer, size), the modes side by side; per size the
    sum over ResNet-50's stride-1 3x3 convolutions."""
    rows = res["rows"]
    cells, order = {}, []
    for r in rows:
        key = (r["layer"], r["size"])
        if key not in cells:
            order.append(key)
            cells[key] = {"layer": r["layer"] + (" (x%d)" % r["count"] if r["count"] > 1
                                                 else ""),
                          "size": r["size"], "shape": "%dx%d, %d->%d" % (
                              r["side"], r["side"], r["cin"], r["cout"])}
        cells[key]["%s%d" % (r["mode"], r["batch"])] = "%.2f [%.2f, %.2f] (%.3g ms)" % (
            r["speedup"], r["q1"], r["q3"], r["direct_ms"])
    cols = [("layer", "layer"), ("size", "input px"), ("shape", "layer input")]
    cols += [("%s%d" % mb, "%s b%d" % ("fwd+bwd" if mb[0] == "train" else "forward",
                                       mb[1])) for mb in MODES]
    text = ["### Winograd vs direct in slim's networks (speed-up = direct / Winograd "
            "time [quartiles] (direct ms))",
            harness.format_table([cells[k] for k in order], cols)]
    sums = case_winograd.network_sums([r for r in rows if r["net"] == "resnet_v1_50"])
    text.append("Sum over ResNet-50's stride-1 3x3 convolutions (each shape x its "
                "count):\n\n" + "\n".join(
                    "- %d px %s batch %d: direct %.0f ms, Winograd %.0f ms, speed-up %.2f"
                    % (size, mode, batch, d, w, d / w)
                    for (size, mode, batch), (d, w) in sorted(sums.items())))
    text += ["Whole training step (SGD), %s %d px batch %d, Winograd in %s: speed-up "
             "%.2f [%.2f, %.2f]; best %.3f s direct, %.3f s Winograd" % (
                 r["model"], r["size"], r["batch"], ", ".join(r["winograd"]),
                 r["speedup"], r["q1"], r["q3"], min(r["direct_s"]), min(r["winograd_s"]))
             for r in res.get("network", [])]
    text.append("Load average: " + "; ".join(res.get("loadavg", [])))
    return "\n\n".join(text)
