"""Case ``winograd``: where Winograd F(2x2, 3x3) pays, per VGG19 layer and image size.

For every distinct 3x3 convolution shape of VGG19 (conv1_1's 3 input channels
left out: nothing to gain there) at several input sizes, the direct
convolution (``tf.nn.conv2d``, oneDNN's kernels) and
:func:`vgg_patch.winograd.conv2d_3x3` are timed interleaved, in one graph and
Session, in three modes: forward at batch 1 and 16 (inference) and forward +
backward at batch 16 (training: the gradients of the input and the filters).
Inputs are variables (no feeds); a step fetches one element of each output
and gradient, so nothing is pruned and nothing large is copied out.

Each timed call repeats its step enough times to last about 0.2 s, so small
layers (2x2 at 32 px) are not timer noise. The result keeps per-round times;
the table gives the median of the round-by-round speed-ups (direct time /
Winograd time) with quartiles, and per size the network-level sum over the
layers (conv3_2 counted 3 times, conv4_2 3 times, conv5_x 4 times).
"""
import logging
import os
import statistics

import harness
from vgg_patch import layout

_LOG = logging.getLogger("bench")

#: Input sizes (px) of the full run and of --quick.
SIZES = (32, 64, 112, 160, 224)
QUICK_SIZES = (32, 112)
#: (mode, batch): forward at batch 1 and 16, forward + backward at 16.
MODES = (("forward", 1), ("forward", 16), ("train", 16))
#: Seconds a timed call should last (its step is repeated to get there).
CALL_S = 0.2


def layer_table():
    """``[(name, in, out, stage, count)]``: VGG19's distinct conv shapes (not
    conv1_1) and how many layers of the network have each."""
    out, seen = [], {}
    for name, cin, cout in layout.CONV_LAYERS[1:]:
        key = (name[4], cin, cout)
        if key in seen:
            seen[key][4] += 1
        else:
            seen[key] = [name, cin, cout, int(name[4]), 1]
            out.append(seen[key])
    return [tuple(row) for row in out]


def side_of(size, stage):
    """A stage's input side for an input of ``size`` px ('SAME' 2x2 pools)."""
    for _ in range(stage - 1):
        size = -(-size // 2)
    return size


def build_pairs(tf, shapes, mode, batch):
    """One graph with every shape both ways.

    Args:
      shapes: ``[(name, side, in, out)]``: a square input of ``side`` px.
      mode: ``'forward'`` or ``'train'`` (forward + the input's and filters'
        gradients).
      batch: images per step.

    Returns:
      ``(graph, init_op, {name: {'direct' | 'winograd': fetch}})``.
    """
    from vgg_patch import winograd  # pylint: disable=import-outside-toplevel
    graph = tf.Graph()
    fetches = {}
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        for name, side, cin, cout in shapes:
            init = tf.compat.v1.initializers.random_normal
            x = tf.compat.v1.get_variable(name + "_x", [batch, side, side, cin],
                                          initializer=init(), use_resource=True)
            w = tf.compat.v1.get_variable(name + "_w", [3, 3, cin, cout],
                                          initializer=init(0.0, 0.05), use_resource=True)
            dy = tf.compat.v1.get_variable(name + "_dy", [batch, side, side, cout],
                                           initializer=init(), use_resource=True,
                                           trainable=False)
            x_t, w_t = x.read_value(), w.read_value()
            ways = {}
            for way, conv in (("direct", lambda a, b: tf.nn.conv2d(a, b, 1, "SAME")),
                              ("winograd", winograd.conv2d_3x3)):
                y = conv(x_t, w_t)
                fetch = [y[0, 0, 0, 0]]
                if mode == "train":
                    d_x, d_w = tf.gradients(y, [x_t, w_t], grad_ys=dy.read_value())
                    fetch += [d_x[0, 0, 0, 0], d_w[0, 0, 0, 0]]
                ways[way] = fetch
            fetches[name] = ways
        init_op = tf.compat.v1.global_variables_initializer()
    return graph, init_op, fetches


def _repeat_fn(sess, fetch):
    """A callable running ``fetch`` n times, n chosen to last about CALL_S."""
    sess.run(fetch)  # warm-up (XLA compiles Winograd's input transform)
    t, _ = harness.timed(lambda: sess.run(fetch))
    n = max(1, int(round(CALL_S / max(t, 1e-6))))

    def run():
        for _ in range(n):
            sess.run(fetch)
    return run, n


def quartiles(values):
    """(first quartile, median, third quartile) of ``values``."""
    v = sorted(values)
    q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
    return q[0], statistics.median(v), q[2]


def time_pairs(tf, shapes, mode, batch, reps):
    """Direct against Winograd for each of ``shapes`` (see :func:`build_pairs`),
    interleaved round by round; returns ``{name: row}`` with the per-round
    times, the medians (ms) and the round-by-round speed-up's quartiles."""
    graph, init_op, fetches = build_pairs(tf, shapes, mode, batch)
    rows = {}
    with tf.compat.v1.Session(graph=graph) as sess:
        sess.run(init_op)
        for name, side, cin, cout in shapes:
            fns, inner = {}, {}
            for way, fetch in fetches[name].items():
                fns[way], inner[way] = _repeat_fn(sess, fetch)
            times = harness.interleaved(fns, 0, reps)
            direct = [t / inner["direct"] for t in times["direct"]]
            wino = [t / inner["winograd"] for t in times["winograd"]]
            low, mid, high = quartiles([d / w for d, w in zip(direct, wino)])
            rows[name] = {"mode": mode, "batch": batch, "layer": name, "side": side,
                          "cin": cin, "cout": cout,
                          "direct_ms": 1000 * statistics.median(direct),
                          "winograd_ms": 1000 * statistics.median(wino),
                          "speedup": mid, "q1": low, "q3": high, "rounds": reps,
                          "direct_s": direct, "winograd_s": wino}
            _LOG.info("%-7s b%-2d %-12s %3dx%-3d %3d->%-3d direct %8.2f ms "
                      "winograd %8.2f ms  speed-up %.3f [%.3f, %.3f]", mode, batch,
                      name, side, side, cin, cout, rows[name]["direct_ms"],
                      rows[name]["winograd_ms"], mid, low, high)
    return rows


def _time_group(tf, size, mode, batch, reps):
    """Rows for every VGG19 layer at one (size, mode, batch)."""
    table = layer_table()
    timed_rows = time_pairs(tf, [(name, side_of(size, stage), cin, cout)
                                 for name, cin, cout, stage, _ in table], mode, batch, reps)
    return [dict(timed_rows[name], size=size, count=count)
            for name, _, _, _, count in table]


def run(args):
    """Every size x mode x layer; returns the rows and the load averages."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    sizes = QUICK_SIZES if args.quick else SIZES
    reps = harness.repeats(args, 5, 1)
    rows, loads = [], []
    for size in sizes:
        for mode, batch in MODES:
            if args.quick and (mode, batch) != ("forward", 1) and size > 32:
                continue  # quick: a smoke run, not a measurement
            load = harness.machine_info().get("loadavg")
            loads.append("%d px %s b%d: %s" % (size, mode, batch, load))
            for row in _time_group(tf, size, mode, batch, reps):
                rows.append(row)
                harness.emit_row(row)
    return {"rows": rows, "loadavg": loads,
            "peak_rss_mib": harness.mib(harness.peak_rss_bytes())}


def network_sums(rows, layers=None):
    """{(size, mode, batch): (direct ms, winograd ms)} summed over the network's
    layers in ``layers`` (all measured layers by default), each shape times its count."""
    sums = {}
    for r in rows:
        if layers is not None and r["layer"] not in layers:
            continue
        key = (r["size"], r["mode"], r["batch"])
        d, w = sums.get(key, (0.0, 0.0))
        sums[key] = (d + r["count"] * r["direct_ms"], w + r["count"] * r["winograd_ms"])
    return sums


def render(res):
    """Markdown: one row per (layer, size), the three modes side by side."""
    rows = res["rows"]
    by = {(r["layer"], r["size"], r["mode"], r["batch"]): r for r in rows}
    out = []
    for name, cin, cout, stage, count in layer_table():
        for size in sorted({r["size"] for r in rows}):
            row = {"layer": "%s (x%d)" % (name, count) if count > 1 else name,
                   "shape": "%dx%d, %d->%d" % (side_of(size, stage), side_of(size, stage),
                                               cin, cout), "size": size}
            for mode, batch in MODES:
                r = by.get((name, size, mode, batch))
                if r:
                    row["%s%d" % (mode, batch)] = "%.2f [%.2f, %.2f] (%.3g ms)" % (
                        r["speedup"], r["q1"], r["q3"], r["direct_ms"])
            out.append(row)
    cols = [("layer", "layer"), ("size", "input px"), ("shape", "layer input"),
            ("forward1", "forward b1: speed-up [quartiles] (direct ms)"),
            ("forward16", "forward b16"), ("train16", "fwd+bwd b16")]
    text = ["### Winograd vs direct, per layer (speed-up = direct / Winograd time)",
            harness.format_table(out, cols)]
    sums = network_sums(rows)
    lines = ["- %d px %s batch %d: direct %.0f ms, Winograd %.0f ms, speed-up %.2f" % (
        size, mode, batch, d, w, d / w) for (size, mode, batch), (d, w) in sorted(sums.items())]
    text.append("Sum over VGG19's conv1_2 ... conv5_4 (each shape x its count):\n\n"
                + "\n".join(lines))
    text.append("Load average: " + "; ".join(res.get("loadavg", [])))
    return "\n\n".join(text)

