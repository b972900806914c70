"""Case ``blocks``: each slim_attention block against its tutorial-style reference.

Forward + backward (gradients with respect to the input and every trainable
variable, plus the batch-norm update ops where a block has them), batch 32,
NHWC, float32, at ResNet-50's four stage sizes. Input and upstream gradient live
in variables so no feed or fetch copies are timed. Before timing, the reference
is given the slim block's weights (set to random values) and both outputs are
compared on the same input, so the two implementations provably compute the
same function.
"""
import logging
import time

import numpy as np

import harness

_LOG = logging.getLogger("bench")

BATCH = 32
SIZES = ((56, 256), (28, 512), (14, 1024), (7, 2048))


def _blocks():
    import slim_attention as slim  # pylint: disable=import-outside-toplevel
    import attention_ref as ref  # pylint: disable=import-outside-toplevel
    # (name, slim fn, reference fn, sizes, note)
    all_sizes = [s for s, _ in SIZES]
    return [
        ("squeeze_and_excitation", lambda x: slim.squeeze_and_excitation(x),
         ref.se_ref, all_sizes, ""),
        ("channel_attention", lambda x: slim.channel_attention(x), ref.channel_ref,
         all_sizes, ""),
        ("spatial_attention", lambda x: slim.spatial_attention(x), ref.spatial_ref,
         all_sizes, ""),
        ("convolutional_block_attention_module",
         lambda x: slim.convolutional_block_attention_module(x), ref.cbam_ref,
         all_sizes, ""),
        ("global_context", lambda x: slim.global_context(x), ref.gc_ref, all_sizes, ""),
        ("efficient_channel_attention", lambda x: slim.efficient_channel_attention(x),
         ref.eca_ref, all_sizes, ""),
        ("non_local_block(subsample=True)",
         lambda x: slim.non_local_block(x, subsample=True),
         lambda x: ref.nl_ref(x, subsample=True), all_sizes,
         "phi, g on the 2x2-max-pooled input"),
        ("non_local_block", lambda x: slim.non_local_block(x), ref.nl_ref, [14, 7],
         "full (HW)^2 attention; at 56x56 it is 32x3136^2 floats (1.26 GB) per "
         "matrix, so the large sizes run subsampled only"),
    ]


class _Graph:
    """One block in its own graph: input/upstream variables and a train step."""

    def __init__(self, fn, size, channels, batch):
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        tf1 = tf.compat.v1
        self.graph = tf.Graph()
        with self.graph.as_default():
            shape = [batch, size, size, channels]
            self.x = tf1.get_variable("bench_x", shape, trainable=False,
                                      initializer=tf1.random_normal_initializer())
            dy = tf1.get_variable("bench_dy", shape, trainable=False,
                                  initializer=tf1.random_normal_initializer())
            self.out = fn(self.x)
            self.vars = tf1.trainable_variables()
            grads = tf.gradients(self.out, [self.x] + self.vars, grad_ys=dy)
            if any(g is None for g in grads):
                raise ValueError("a gradient is None in %s" % fn)
            updates = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
            # Fetch one element of the output and of every gradient: a
            # tf.group of stateless ops alone is pruned by Grappler (nothing
            # would run), and fetching whole tensors would time 100 MB copies
            # to NumPy.
            probes = [tf.reshape(tf.slice(g, [0] * g.shape.rank, [1] * g.shape.rank),
                                 []) for g in [self.out] + grads]
            with tf.control_dependencies(updates):
                self.step_op = tf.add_n(probes)
            self.ph = {v.ref(): tf1.placeholder(v.dtype.base_dtype, v.shape)
                       for v in self.vars}
            self.assign = tf.group(*[v.assign(self.ph[v.ref()]) for v in self.vars])
            self.x_ph = tf1.placeholder(tf.float32, shape)
            self.x_assign = self.x.assign(self.x_ph)
            init = tf1.global_variables_initializer()
        self.sess = tf1.Session(graph=self.graph)
        self.sess.run(init)

    def step(self):
        self.sess.run(self.step_op)

    def output(self, x):
        self.sess.run(self.x_assign, {self.x_ph: x})
        return self.sess.run(self.out)

    def close(self):
        self.sess.close()


def _roles(variables):
    """Orders variables for pairing: plain weights in creation order, then each
    normalisation's gamma and beta by name (their creation order differs)."""
    plain = [v for v in variables if v.op.name.split("/")[-1] not in ("gamma", "beta")]
    gammas = [v for v in variables if v.op.name.split("/")[-1] == "gamma"]
    betas = [v for v in variables if v.op.name.split("/")[-1] == "beta"]
    return plain, gammas, betas


def copy_weights(src, dst, seed=0):
    """Gives ``src`` random weights and ``dst`` the same ones; returns False
    when the two variable lists cannot be paired (then no check is made)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for a, b in zip(_roles(src.vars), _roles(dst.vars)):
        if len(a) != len(b):
            return False
        pairs += list(zip(a, b))
    if len(pairs) != len(src.vars) or len(src.vars) != len(dst.vars):
        return False
    feed_src, feed_dst = {}, {}
    for va, vb in pairs:
        sa, sb = va.shape.as_list(), vb.shape.as_list()
        if int(np.prod(sa)) != int(np.prod(sb)):
            return False
        name = va.op.name.split("/")[-1]
        if name == "gamma":
            val = 1.0 + 0.1 * rng.standard_normal(sa)
        elif len(sa) >= 2:
            val = rng.standard_normal(sa) / np.sqrt(np.prod(sa[:-1]))
        else:
            val = 0.1 * rng.standard_normal(sa)
        val = val.astype(np.float32)
        feed_src[src.ph[va.ref()]] = val
        feed_dst[dst.ph[vb.ref()]] = val.reshape(sb)
    src.sess.run(src.assign, feed_src)
    dst.sess.run(dst.assign, feed_dst)
    return True


def run(args):
    """Times every block against its reference; returns the rows."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel,unused-import
    rows = []
    warm, reps = 1, (args.repeats or (2 if args.quick else 9))
    blocks = _blocks()
    if args.quick:
        # Two sizes are enough to exercise the code path.
        sizes = {14, 7}
        blocks = [(n, f, r, [s for s in ss if s in sizes], note)
                  for n, f, r, ss, note in blocks]
    for name, slim_fn, ref_fn, sizes, note in blocks:
        for size in sizes:
            channels = dict(SIZES)[size]
            t0 = time.perf_counter()
            # The numerical check runs at batch 2 (same function, small memory).
            s2, r2 = _Graph(slim_fn, size, channels, 2), _Graph(ref_fn, size, channels, 2)
            check = ""
            if copy_weights(s2, r2):
                x = np.random.default_rng(1).standard_normal(
                    (2, size, size, channels)).astype(np.float32)
                a, b = s2.output(x), r2.output(x)
                check = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))
            else:
                check = "weights not pairable"
            s2.close()
            r2.close()
            graphs = {"slim": _Graph(slim_fn, size, channels, BATCH),
                      "ref": _Graph(ref_fn, size, channels, BATCH)}
            times = harness.interleaved({k: g.step for k, g in graphs.items()},
                                        warm, reps)
            for g in graphs.values():
                g.close()
            s, r = harness.summarize(times["slim"]), harness.summarize(times["ref"])
            row = {"block": name, "shape": "%dx%dx%d" % (size, size, channels),
                   "slim_s": s["median_s"], "ref_s": r["median_s"],
                   "slim_min_s": s["min_s"], "ref_min_s": r["min_s"], "n": s["n"],
                   "check": check, "note": note,
                   "slim_times_s": [round(t, 6) for t in times["slim"]],
                   "ref_times_s": [round(t, 6) for t in times["ref"]]}
            rows.append(row)
            harness.emit_row(row)
            _LOG.info("%s %s: slim %.1f ms, ref %.1f ms, ratio %.2f, check %s (%.0f s)",
                      name, row["shape"], 1000 * row["slim_s"], 1000 * row["ref_s"],
                      row["ref_s"] / row["slim_s"], check, time.perf_counter() - t0)
    return {"rows": rows, "peak_rss_mib": harness.mib(harness.peak_rss_bytes())}
