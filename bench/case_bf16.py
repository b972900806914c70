"""Case ``bf16``: bfloat16 against float32 for VGG19 on this CPU.

Variants, all with the same (synthetic) weights, timed interleaved:

- ``float32``: the minimal graph VGG19 (bench/vgg_ref.graph_vgg19).
- ``bf16 graph``: the same graph computing in bfloat16 (inference: bfloat16
  variables; training: float32 master weights cast to bfloat16 at use, the
  usual mixed-precision recipe).
- ``float32 + AMP rewrite``: the float32 graph run in a Session whose
  ConfigProto turns on TensorFlow's oneDNN bfloat16 auto-mixed-precision
  rewrite (``auto_mixed_precision_onednn_bfloat16``): no model change at all.
- the same two (plain and AMP rewrite) for vgg_patch.Vgg19 with CBAM, when
  vgg_patch is available: that is the option vgg_patch could offer.

Accuracy against float32 of the same network: inference, the logits' max
relative error (max |d| / max |fp32|), their norm-wise relative error and top-1
agreement on 8 images; training, the cosine between the bf16 and float32
gradients of all weights (dropout off) and the relative error of the loss.
"""
import logging
import time

import numpy as np

import case_vgg
import harness
import vgg_ref

_LOG = logging.getLogger("bench")


def _contestants(weights, npy, train):
    out = [
        ("float32", case_vgg.GraphContestant("float32", case_vgg.floor_builder(weights, train),
                                             train)),
        ("bf16 graph", case_vgg.GraphContestant(
            "bf16 graph",
            case_vgg.floor_builder(weights, train, dtype="bfloat16",
                                   master_dtype="float32" if train else "bfloat16"),
            train)),
        ("float32 + AMP rewrite", case_vgg.GraphContestant(
            "float32 + AMP rewrite", case_vgg.floor_builder(weights, train), train,
            amp_bf16=True)),
    ]
    build = case_vgg.vgg_patch_builder(npy, "cbam", train)
    out.append(("vgg_patch CBAM float32",
                case_vgg.GraphContestant("vgg_patch CBAM float32", build, train)))
    out.append(("vgg_patch CBAM + AMP rewrite",
                case_vgg.GraphContestant("vgg_patch CBAM + AMP rewrite", build, train,
                                         amp_bf16=True)))
    return out


def _reference_of(name):
    return "vgg_patch CBAM float32" if name.startswith("vgg_patch") else "float32"


def _accuracy(contestants, train):
    """name -> accuracy text against the float32 variant of the same network."""
    rgb, labels = case_vgg.inputs(8, seed=11)
    acc = {}
    if not train:
        logits = {n: c.logits_of(rgb).astype(np.float64) for n, c in contestants}
        for n, l in logits.items():
            ref = logits[_reference_of(n)]
            d = l - ref
            acc[n] = "logits max rel err %.2e, norm rel err %.2e, top-1 agree %d/8" % (
                np.max(np.abs(d)) / np.max(np.abs(ref)),
                np.linalg.norm(d) / np.linalg.norm(ref),
                int(np.sum(np.argmax(l, 1) == np.argmax(ref, 1))))
    else:
        grads, losses = {}, {}
        for n, c in contestants:
            grads[n] = c.gradients_of(rgb, labels)
            losses[n] = float(c.sess.run(c.loss, {c.rgb: rgb, c.labels: labels,
                                                  c.train_mode: False}))
        for n, g in grads.items():
            ref = grads[_reference_of(n)]
            cos = float(np.dot(g, ref) / (np.linalg.norm(g) * np.linalg.norm(ref)))
            lref = losses[_reference_of(n)]
            acc[n] = "grad cosine %.5f, loss rel err %.2e" % (
                cos, abs(losses[n] - lref) / abs(lref))
    return acc


def run(args):
    """Inference (batch 1, 16) then training (batch 16); returns the rows."""
    weights = vgg_ref.load_npy(args.npy)
    rows = []
    for train in (False, True):
        t0 = time.perf_counter()
        contestants = _contestants(weights, args.npy, train)
        _LOG.info("bf16 %s: built %d variants in %.0f s", "train" if train else "inference",
                  len(contestants), time.perf_counter() - t0)
        acc = _accuracy(contestants, train)
        for batch in ((16,) if train else (1, 16)):
            rgb, labels = case_vgg.inputs(batch)
            fns = {n: c.step_fn(rgb, labels) for n, c in contestants}
            if batch == 1:
                warm, reps = 2, harness.repeats(args, 6, 2)
            else:
                warm, reps = 1, harness.repeats(args, 4, 1)
            times = harness.interleaved(fns, warm, reps)
            for n, _ in contestants:
                s = harness.summarize(times[n])
                ref = harness.summarize(times[_reference_of(n)])
                rows.append({"mode": "train" if train else "inference", "variant": n,
                             "batch": batch, "ms": 1000 * s["median_s"],
                             "img_s": batch / s["median_s"],
                             "speedup": ref["median_s"] / s["median_s"],
                             "err": acc[n], "n": s["n"],
                             "times_s": [round(t, 5) for t in times[n]],
                             "ref_times_s": [round(t, 5) for t in times[_reference_of(n)]]})
                _LOG.info("%s", rows[-1])
                harness.emit_row(rows[-1])
        for _, c in contestants:
            c.close()
    return {"rows": rows, "peak_rss_mib": harness.mib(harness.peak_rss_bytes())}
