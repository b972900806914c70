"""Case ``build``: building VGG19 from the full-size npy, vgg_patch against
tensorflow-vgg's ``tf.constant`` approach.

Each variant runs in a fresh process of its own, so its peak resident memory
(VmHWM) is its alone. ``baseline`` is TensorFlow's own baseline measured the
same way: the same imports, a graph, a placeholder, a Session and one tiny run,
but no network. For each network variant:

- graph build s: constructing the graph (for tensorflow-vgg this includes its
  ``np.load`` of the whole file, which happens in its constructor);
- initializer s: ``global_variables_initializer()`` (vgg_patch reads the file here);
- to first output s: from the start of the build to the first ``prob`` of one
  224x224 image;
- peak RSS beyond baseline, and its multiple of the file size;
- GraphDef MB: ``len(graph.as_graph_def().SerializeToString())``.

vgg_patch is measured in both behaviours TF1 code runs in on TF2 (the
``behaviour`` column): TF2 behaviour with ``tf.compat.v1`` graphs, and after
``tf.compat.v1.disable_v2_behavior()`` (v1: ``RefVariable`` by default, v1
control flow), each against the baseline of its own behaviour. The column is
read back from TensorFlow in the worker, and ``variables`` says which kind the
network's variables are.
"""
import logging
import os
import sys
import time

import numpy as np

import harness

_LOG = logging.getLogger("bench")


def _session_start(behavior):
    """Behaviour, imports, graph, placeholder, session, a tiny run: TF's baseline."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if behavior == "v1":
        tf.compat.v1.disable_v2_behavior()
    import vgg_patch  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    import slim_attention  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    graph = tf.Graph()
    with graph.as_default():
        rgb = tf.compat.v1.placeholder(tf.float32, [None, 224, 224, 3], "rgb")
        probe = tf.reduce_mean(rgb)
    sess = tf.compat.v1.Session(graph=graph)
    sess.run(probe, {rgb: np.zeros((1, 224, 224, 3), np.float32)})
    return tf, graph, rgb, sess


# Variant name -> Vgg19 arguments. "winograd": its first output includes XLA
# compiling the input transforms.
_VGG_PATCH_VARIANTS = {
    "vgg_patch": {"attention": "cbam"},
    "vgg_patch winograd": {"attention": "cbam", "winograd": True},
    "vgg_patch (attention=None)": {"attention": None},
}

# (variant, behaviour) in the order measured; each behaviour's baseline first.
_RUNS = (
    [("baseline", "v2")] + [(v, "v2") for v in _VGG_PATCH_VARIANTS]
    + [("baseline", "v1"), ("vgg_patch", "v1"), ("vgg_patch (attention=None)", "v1")])
BEHAVIORS = ("v2", "v1")


def _behavior():
    """'v2' or 'v1', as TensorFlow itself reports it."""
    from tensorflow.python import tf2  # pylint: disable=import-outside-toplevel
    return "v2" if tf2.enabled() else "v1"


def _variable_kinds(tf):
    """'resource', 'ref' or 'resource+ref': the graph's global variables."""
    from tensorflow.python.ops import resource_variable_ops  # pylint: disable=import-outside-toplevel
    kinds = {"resource" if isinstance(v, resource_variable_ops.ResourceVariable) else "ref"
             for v in tf.compat.v1.global_variables()}
    return "+".join(sorted(kinds, reverse=True))


def run_variant(variant, npy, behavior="v2"):
    """Measures one variant in this process, in ``behavior``; returns its row."""
    if behavior not in BEHAVIORS:
        raise ValueError("behavior must be one of %s, got %r" % (BEHAVIORS, behavior))
    tf, graph, rgb, sess = _session_start(behavior)
    row = {"variant": variant, "behavior": _behavior()}
    if variant == "baseline":
        row["peak_bytes"] = harness.peak_rss_bytes()
        return row
    image = np.random.default_rng(0).random((1, 224, 224, 3), dtype=np.float32)
    t0 = time.perf_counter()
    with graph.as_default():
        if variant in _VGG_PATCH_VARIANTS:
            import vgg_patch  # pylint: disable=import-outside-toplevel
            vgg = vgg_patch.Vgg19(npy, trainable=True, **_VGG_PATCH_VARIANTS[variant])
            vgg.build(rgb, train_mode=False)
        elif variant == "tensorflow-vgg tf.constant":
            import vgg_ref  # pylint: disable=import-outside-toplevel
            vgg = vgg_ref.ConstantVgg19(npy)
            vgg.build(rgb)
        else:
            raise ValueError("unknown build variant %r" % variant)
        init = tf.compat.v1.global_variables_initializer()
        row["variables"] = _variable_kinds(tf)
    t_build = time.perf_counter()
    graph_def_bytes = len(graph.as_graph_def().SerializeToString())
    t_gd = time.perf_counter()
    sess.run(init)
    t_init = time.perf_counter()
    prob = sess.run(vgg.prob, {rgb: image})
    t_first = time.perf_counter()
    row.update({
        "build_s": t_build - t0,
        "init_s": t_init - t_gd,
        # GraphDef serialisation is a measurement, not part of the user's path.
        "first_s": (t_first - t0) - (t_gd - t_build),
        "graphdef_bytes": graph_def_bytes,
        "peak_bytes": harness.peak_rss_bytes(),
        "prob_sum": float(np.sum(prob)),
    })
    return row


def run(args):
    """Runs every variant in its own subprocess; returns the rows."""
    if args.variant:
        return {"row": run_variant(args.variant, args.npy, args.tf_behavior)}
    runs = list(_RUNS)
    notes = []
    if args.skip_constant:
        notes.append("tensorflow-vgg's tf.constant build skipped (--skip-constant)")
    else:
        avail = _mem_available()
        if avail is not None and avail < 11 * 2**30:
            notes.append("tensorflow-vgg's tf.constant build skipped: only %.1f GiB "
                         "available (it needs about 9)" % (avail / 2**30))
        else:
            runs.append(("tensorflow-vgg tf.constant", "v2"))
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py")
    file_bytes = os.path.getsize(args.npy)
    rows = []
    baselines = {}
    for variant, behavior in runs:
        res, err, _ = harness.run_worker(
            script, "build",
            ["--variant", variant, "--npy", args.npy, "--tf-behavior", behavior])
        if err:
            notes.append("%s (%s) failed: %s" % (variant, behavior, err))
            continue
        row = res["row"]
        if row["behavior"] != behavior:
            notes.append("%s: asked for TF %s behaviour, ran in %s"
                         % (variant, behavior, row["behavior"]))
        if variant == "baseline":
            baselines[behavior] = row["peak_bytes"]
        row["peak_mib"] = harness.mib(row["peak_bytes"])
        baseline = baselines.get(behavior)
        if baseline is not None and variant != "baseline":
            row["beyond_mib"] = harness.mib(row["peak_bytes"] - baseline)
            row["x_file"] = (row["peak_bytes"] - baseline) / file_bytes
        if "graphdef_bytes" in row:
            row["graphdef_mb"] = row["graphdef_bytes"] / 1e6
        rows.append(row)
        harness.emit_row(row)
        _LOG.info("build %s: %s", variant, {k: v for k, v in row.items()
                                            if not k.endswith("bytes")})
    return {"rows": rows, "file_mb": file_bytes / 1e6, "notes": notes}


def _mem_available():
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run through bench/run.py --only build")
