"""Benchmarks for slim_attention and vgg_patch, measured side by side (issue 6).

One command prints the whole table::

    python bench/run.py                      # everything (about 15-25 min on 2 cores)
    python bench/run.py --quick              # tiny repeat counts, a smoke run
    python bench/run.py --only inference,train
    python bench/run.py --markdown results.md --json results.json

Cases (``--only`` takes these names):

- ``inference``: vgg_patch's VGG19+CBAM (and without attention; both also with
  ``winograd=True``) in a ``tf.compat.v1.Session`` against
  ``tf.keras.applications.VGG19`` with the same weights, batch 1 and 16, 224x224
  (images/s and the ratio). Also a minimal bench-only graph VGG19, as a floor for
  graph-mode overhead.
- ``train``: forward, backward and SGD update at batch 16, the same contestants
  (Winograd with CBAM only, no floor).
  CBAM's overhead is read from these two cases (CBAM vs attention=None).
- ``blocks``: every slim_attention block, forward + backward, batch 32, at
  56x56x256, 28x28x512, 14x14x1024, 7x7x2048, against a tutorial-style reference
  written with ``tf.compat.v1.layers``.
- ``build``: building from the full-size 548 MB npy: wall time, time to first
  output, peak RSS beyond TensorFlow's baseline, GraphDef size; vgg_patch under
  TF2 behaviour and after ``disable_v2_behavior()`` (each against its own
  baseline), against tensorflow-vgg's ``tf.constant`` approach (``--skip-constant`` leaves that one
  out: it peaks at about 8 GB).
- ``bf16``: bfloat16 against float32 for VGG19 inference and training (a
  bench-only bf16 graph, and TensorFlow's oneDNN auto-mixed-precision rewrite),
  with the logits' relative error.
- ``pipeline``: vgg_patch.data's tf.data pipeline, images/s, against what the
  training step consumes.
- ``winograd``: direct against Winograd convolutions per VGG19 layer shape and
  input size (32-224 px), forward at batch 1 and 16 and forward + backward at
  16: where Winograd pays (the rule of :mod:`vgg_patch.fastpath`).
- ``winograd_slim``: the same for the 3x3 convolutions of slim's ResNet-50
  (each unit's conv2) at 64-224 px and three of slim's VGG layers, forward at
  batch 1, 16, 32 and forward + backward at 16 and 32 (slim-attention-train's rule).
- ``defaults``: what users get: ``vgg19-cbam-train`` (224 px, batch 16) and
  ``vgg19-cbam-predict`` at their defaults, images/s timed inside each run
  after its first step or batch, against a Keras VGG19 training step and
  inference (same images, batches 2 on), per round.
- ``cluster``: one process against 2 workers on this machine (collective
  all-reduce three ways, and 1 ps + SyncReplicasOptimizer): steps/s, images/s,
  bytes per step, communication time per step (docs/distributed.md).

Every case runs in its own subprocess (clean TensorFlow state; its own peak
memory). Within a case the contestants are timed interleaved, round by round,
so their ratio holds even while the machine's load changes.
"""
import argparse
import json
import logging
import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import harness  # noqa: E402

_LOG = logging.getLogger("bench")

# Case name -> (module in bench/, function taking the parsed args, returning the
# case's result dict). The worker imports only the module of its own case.
CASES = {
    "inference": ("case_vgg", "run_inference"),
    "train": ("case_vgg", "run_train"),
    "blocks": ("case_blocks", "run"),
    "build": ("case_build", "run"),
    "bf16": ("case_bf16", "run"),
    "pipeline": ("case_pipeline", "run"),
    "winograd": ("case_winograd", "run"),
    "winograd_slim": ("case_winograd_slim", "run"),
    "defaults": ("case_defaults", "run"),
    "cluster": ("case_cluster", "run"),
}


def _parse(argv):
    p = argparse.ArgumentParser(
        prog="python bench/run.py",
        description="Benchmarks for slim_attention and vgg_patch (issue 6).")
    p.add_argument("--quick", action="store_true",
                   help="tiny repeat counts (smoke run while the machine is busy)")
    p.add_argument("--only", default=",".join(CASES),
                   help="comma-separated cases, from: %s" % ", ".join(CASES))
    p.add_argument("--npy", default=None,
                   help="full-size vgg19.npy to use (default: a synthetic one, "
                        "written once under $BENCH_CACHE or /tmp/slim_attention_bench)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repeats per contestant (overrides the default)")
    p.add_argument("--skip-constant", action="store_true",
                   help="leave out tensorflow-vgg's tf.constant build (~8 GB peak)")
    p.add_argument("--markdown", default=None, help="also write the tables here")
    p.add_argument("--json", default=None, help="also write raw results here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    p.add_argument("--tf-behavior", choices=("v2", "v1"), default="v2",
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    bad = [c for c in only if c not in CASES]
    if bad:
        p.error("--only: unknown case(s) %s; valid: %s" % (", ".join(bad),
                                                          ", ".join(CASES)))
    args.only = only
    return args


def run_case(name, args):
    """Runs one case in this (worker) process and emits its result."""
    import importlib  # pylint: disable=import-outside-toplevel
    if name not in CASES:
        raise ValueError("unknown case %r; valid: %s" % (name, ", ".join(CASES)))
    module, function = CASES[name]
    t0 = time.perf_counter()
    info = harness.tf_info()
    res = getattr(importlib.import_module(module), function)(args)
    res["tf_info"] = info
    res["case_s"] = round(time.perf_counter() - t0, 1)
    harness.emit_result(res)


def run_one(script, case, extra, cases):
    """Runs ``case`` in its worker; puts its result, error and wall time in
    ``cases[case]``. Each row the case measures is logged as it arrives and
    kept: a case that fails, times out or is interrupted reports the rows it
    had. Returns True if interrupted (Ctrl-C or SIGTERM)."""
    rows, t0 = {}, time.perf_counter()

    def on_row(table, row):
        rows.setdefault(table, []).append(row)
        _LOG.info("   %s %s: %s", case, table, json.dumps(row))

    try:
        res, err, wall = harness.run_worker(script, case, extra, on_row=on_row)
    except KeyboardInterrupt:
        cases[case] = {"result": harness.partial_result(rows) if rows else None,
                       "error": "interrupted", "wall_s": round(time.perf_counter() - t0, 1)}
        _LOG.warning("%s interrupted after %d row(s)", case, sum(map(len, rows.values())))
        return True
    cases[case] = {"result": res, "error": err, "wall_s": round(wall, 1)}
    if err:
        _LOG.warning("%s failed: %s", case, err)
    _LOG.info("   %s done in %.0f s", case, wall)
    return False


def main(argv=None):
    """Runs the selected cases, each in a subprocess, and prints the tables."""
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    harness.stop_on_sigterm()
    if args.worker:
        run_case(args.worker, args)
        return 0

    import vgg_ref  # pylint: disable=import-outside-toplevel
    npy = args.npy
    if npy is None and any(c in args.only for c in
                           ("inference", "train", "build", "bf16")):
        t0 = time.perf_counter()
        npy = vgg_ref.write_synthetic_npy()
        _LOG.info("synthetic vgg19.npy ready: %s (%.1f s)", npy,
                  time.perf_counter() - t0)
    extra = []
    if args.quick:
        extra.append("--quick")
    if npy:
        extra += ["--npy", npy]
    if args.repeats:
        extra += ["--repeats", str(args.repeats)]
    if args.skip_constant:
        extra.append("--skip-constant")

    machine = harness.machine_info()
    results = {"machine": machine, "cases": {}, "quick": args.quick,
               "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    script = os.path.abspath(__file__)
    interrupted = False
    for case in args.only:
        _LOG.info("== %s (load average %s)", case, harness.machine_info()["loadavg"])
        interrupted = run_one(script, case, extra, results["cases"])
        if interrupted:
            break
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results["loadavg_end"] = harness.machine_info()["loadavg"]

    import report  # pylint: disable=import-outside-toplevel
    text = report.render(results)
    sys.stdout.write(text + "\n")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
