"""Turns run.py's raw results into the Markdown tables it prints.

Every "ratio" is a speed ratio, ours / reference: >= 1.0 means at least as fast.
"""
import statistics

import harness
from harness import format_table

KERAS = "Keras VGG19 (default, XLA)"
KERAS_NOJIT = "Keras VGG19 (jit_compile=False)"


def _machine(results):
    m = results["machine"]
    tfi = {}
    for case in results["cases"].values():
        if case.get("result") and case["result"].get("tf_info"):
            tfi = case["result"]["tf_info"]
            break
    lines = [
        "Machine: %s, %s CPUs (%s), %s GiB RAM, %s; flags: %s" % (
            m.get("cpu_model"), m.get("cpus"), m.get("hypervisor", "bare metal"),
            m.get("mem_total_gib"), "Python " + m.get("python", "?"),
            m.get("cpu_flags")),
        "Software: TensorFlow %s, Keras %s, NumPy %s, oneDNN %s" % (
            tfi.get("tensorflow"), tfi.get("keras"), tfi.get("numpy"),
            {True: "on", False: "off", None: "unknown"}[tfi.get("onednn")]),
        "Run: %s -> %s, load average at start %s, at end %s%s" % (
            results.get("started"), results.get("finished"), m.get("loadavg"),
            results.get("loadavg_end"), " (--quick: tiny repeat counts, "
            "indicative only)" if results.get("quick") else ""),
    ]
    return "\n".join("- " + line for line in lines)


def _vgg_table(res, title):
    rows = res["rows"]
    by = {(r["model"], r["batch"]): r for r in rows}
    out = []
    for r in rows:
        row = dict(r)
        row["ms"] = 1000 * r["median_s"]
        for key, ref in (("vs_keras", KERAS), ("vs_keras_nojit", KERAS_NOJIT)):
            k = by.get((ref, r["batch"]))
            row[key] = (k["median_s"] / r["median_s"]) if k else ""
        k = by.get((KERAS, r["batch"]))
        row["vs_keras_min"] = (k["min_s"] / r["min_s"]) if k else ""
        row["paired"] = paired_cell(k.get("times_s") if k else None, r.get("times_s"))
        if r.get("cpu_s"):
            row["cpu_ms"] = 1000 * r["cpu_s"]
            row["vs_keras_cpu"] = (k["cpu_s"] / r["cpu_s"]) if k and k.get("cpu_s") else ""
        row["logit_err"] = res.get("checks", {}).get(r["model"], "")
        out.append(row)
    cols = [("model", "model"), ("batch", "batch"), ("ms", "median ms/step"),
            ("img_s", "images/s"), ("vs_keras", "ratio vs Keras (XLA)"),
            ("vs_keras_nojit", "ratio vs Keras (no XLA)"),
            ("vs_keras_min", "ratio vs Keras (XLA), best times"),
            ("paired", "round-by-round ratio vs Keras (XLA): median [quartiles]"),
            ("cpu_ms", "CPU ms/step"), ("vs_keras_cpu", "CPU-time ratio vs Keras (XLA)"),
            ("n", "rounds"),
            ("logit_err", "max |logits - Keras| / max |Keras|")]
    text = "### %s\n\n%s\n\nPeak RSS of the process (all contestants): %.0f MiB." % (
        title, format_table(out, cols), res.get("peak_rss_mib") or 0)
    cbam = by_batch_overhead(by)
    if cbam:
        text += "\n\nCBAM overhead (CBAM vs attention=None, same process): " + ", ".join(
            "batch %d: %+.2f%%" % (b, 100 * o) for b, o in cbam)
    wino = winograd_speedups(by)
    if wino:
        text += ("\n\nWinograd speed-up (winograd=True vs the direct graph, same "
                 "attention, round-by-round median [quartiles]): " + ", ".join(
                     "%s batch %d: %s" % (label, b, cell) for label, b, cell in wino))
    return text


def winograd_speedups(by):
    """[(attention label, batch, paired cell)]: each "... winograd" row against its
    direct twin (the same name without " winograd")."""
    out = []
    for (model, batch), r in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if model.endswith(" winograd"):
            direct = by.get((model[:-len(" winograd")], batch))
            cell = paired_cell(direct.get("times_s") if direct else None, r.get("times_s"))
            if cell:
                out.append((model[len("vgg_patch "):-len(" winograd")], batch, cell))
    return out


def paired_ratios(ref_times, times):
    """(median, lower quartile, upper quartile) of the per-round speed ratios
    ``ref_times[i] / times[i]``, or None without per-round times.

    Contestants are timed in the same rounds (run back to back), so a round's
    ratio compares them under the same load; its spread over the rounds shows
    how far the medians' ratio can be trusted.
    """
    if not ref_times or not times or len(ref_times) != len(times):
        return None
    ratios = sorted(x / y for x, y in zip(ref_times, times))
    return (statistics.median(ratios), _quantile(ratios, 0.25), _quantile(ratios, 0.75))


def paired_cell(ref_times, times):
    """:func:`paired_ratios` as a table cell, "median [lower, upper]" ("" if none)."""
    paired = paired_ratios(ref_times, times)
    return "%.3f [%.3f, %.3f]" % paired if paired else ""


def _quantile(values, q):
    """Linear-interpolation quantile of sorted ``values``."""
    pos = q * (len(values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def by_batch_overhead(by):
    """[(batch, (t_cbam - t_none) / t_none)] from the vgg_patch rows."""
    out = []
    for (model, batch), r in sorted(by.items(), key=lambda kv: kv[0][1]):
        if model == "vgg_patch CBAM":
            none = by.get(("vgg_patch no-attention", batch))
            if none:
                out.append((batch, r["median_s"] / none["median_s"] - 1.0))
    return out


def _blocks_table(res):
    rows = []
    for r in res["rows"]:
        row = dict(r)
        row["slim_ms"] = 1000 * r["slim_s"]
        row["ref_ms"] = 1000 * r["ref_s"]
        row["ratio"] = r["ref_s"] / r["slim_s"]
        row["ratio_min"] = r["ref_min_s"] / r["slim_min_s"]
        row["paired"] = paired_cell(r.get("ref_times_s"), r.get("slim_times_s"))
        rows.append(row)
    cols = [("block", "block"), ("shape", "input (batch 32)"),
            ("slim_ms", "slim_attention ms"), ("ref_ms", "tutorial ref ms"),
            ("ratio", "ratio (medians)"), ("ratio_min", "ratio (best times)"),
            ("paired", "round-by-round ratio: median [quartiles]"),
            ("check", "max |out - ref| (same weights)"),
            ("n", "rounds"), ("note", "note")]
    return "### Attention blocks, forward + backward\n\n" + format_table(rows, cols)


def _build_table(res):
    cols = [("variant", "build"), ("behavior", "TF behaviour"),
            ("variables", "variables"), ("build_s", "graph build s"),
            ("init_s", "initializer s"), ("first_s", "to first output s"),
            ("peak_mib", "peak RSS MiB"), ("beyond_mib", "beyond baseline MiB"),
            ("x_file", "x file size"), ("graphdef_mb", "GraphDef MB")]
    text = "### Building from the full-size npy (%.0f MB)\n\n%s" % (
        res.get("file_mb", 0), format_table(res["rows"], cols))
    if res.get("notes"):
        text += "\n\n" + "\n".join("- " + n for n in res["notes"])
    return text


def _bf16_table(res):
    rows = [dict(r, paired=paired_cell(r.get("ref_times_s"), r.get("times_s")))
            for r in res["rows"]]
    cols = [("mode", "mode"), ("variant", "variant"), ("batch", "batch"),
            ("ms", "median ms/step"), ("img_s", "images/s"),
            ("speedup", "speed-up vs float32"),
            ("paired", "round-by-round speed-up: median [quartiles]"),
            ("err", "accuracy vs float32"), ("n", "rounds")]
    return "### bfloat16 vs float32 (VGG19)\n\n" + format_table(rows, cols)


def _pipeline_table(res, results=None):
    step = None
    train = ((results or {}).get("cases", {}).get("train") or {}).get("result")
    if train:
        for r in train["rows"]:
            if r["model"] == "vgg_patch CBAM" and r["batch"] == 16:
                step = r["img_s"]
    rows = []
    for r in res["rows"]:
        row = dict(r)
        if step:
            row["x_step"] = r["img_s"] / step
        rows.append(row)
    cols = [("what", "what"), ("img_s", "images/s"),
            ("x_step", "x the training step's images/s"), ("note", "note")]
    text = "### Input pipeline\n\n" + format_table(rows, cols)
    if step:
        text += ("\n\nTraining step (vgg_patch CBAM, batch 16, from the train case): "
                 "%.2f images/s." % step)
    return text


_RENDER = {
    "inference": lambda r: _vgg_table(r, "VGG19 inference, 224x224"),
    "train": lambda r: _vgg_table(r, "VGG19 training step (forward, backward, SGD), "
                                     "224x224"),
    "blocks": _blocks_table,
    "build": _build_table,
    "bf16": _bf16_table,
    "pipeline": _pipeline_table,
    "winograd": lambda res: __import__("case_winograd").render(res),
    "winograd_slim": lambda res: __import__("case_winograd_slim").render(res),
    "defaults": lambda res: __import__("case_defaults").render(res),
    "cluster": lambda res: __import__("case_cluster").render(res),
}


def render(results):
    """The whole report as Markdown."""
    parts = ["## Benchmark results", _machine(results)]
    for name, case in results["cases"].items():
        if case.get("error"):
            parts.append("### %s\n\nFAILED: %s" % (name, case["error"]))
        if case.get("result"):
            if case["result"].get("partial"):
                parts.append(harness.partial_tables(case["result"]))
            elif name == "pipeline":
                parts.append(_pipeline_table(case["result"], results))
            else:
                parts.append(_RENDER[name](case["result"]))
            parts[-1] += "\n\n(case wall time %.0f s)" % case["wall_s"]
    return "\n\n".join(parts)
