"""Cases ``inference`` and ``train``: vgg_patch's VGG19 against Keras' VGG19.

Also the contestants (a tf.compat.v1 graph + Session, or a Keras model) that
case_bf16 reuses. Each case runs inside its own subprocess (see run.py).
"""
import logging
import os
import time

import numpy as np

import harness
import vgg_ref
from vgg_patch.session import session_config

_LOG = logging.getLogger("bench")

LR = 1e-5          # SGD learning rate for training steps (small: weights are random)
IMAGE = (224, 224, 3)


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return tf


def inputs(batch, seed=1):
    """Random RGB images in [0, 1) and labels: (batch, 224, 224, 3), (batch,)."""
    rng = np.random.default_rng(seed)
    rgb = rng.random((batch,) + IMAGE, dtype=np.float32)
    labels = rng.integers(0, 1000, size=batch).astype(np.int32)
    return rgb, labels


# --------------------------------------------------------------------------- contestants
class GraphContestant:
    """A tf.compat.v1 graph + Session with an inference or a training step."""

    def __init__(self, name, build_fn, train, amp_bf16=False):
        """``build_fn(rgb, train_mode) -> (logits, init_fn(sess) or None)``."""
        tf = _tf()
        self.name = name
        self.graph = tf.Graph()
        with self.graph.as_default():
            # Same seed in every graph: two builds of one network get the same
            # fresh (e.g. CBAM) weights, so their outputs can be compared.
            tf.compat.v1.set_random_seed(0)
            self.rgb = tf.compat.v1.placeholder(tf.float32, (None,) + IMAGE, "rgb")
            self.labels = tf.compat.v1.placeholder(tf.int32, [None], "labels")
            self.train_mode = tf.compat.v1.placeholder(tf.bool, [], "train_mode")
            self.logits, init_fn = build_fn(self.rgb, self.train_mode if train else None)
            self.loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(
                    labels=self.labels, logits=self.logits))
            self.train_op = None
            self.grads = None
            if train:
                opt = tf.compat.v1.train.GradientDescentOptimizer(LR)
                grads_and_vars = opt.compute_gradients(self.loss)
                self.grads = [g for g, _ in grads_and_vars]
                self.train_op = opt.apply_gradients(grads_and_vars)
            init = tf.compat.v1.global_variables_initializer()
            self.graph_def_bytes = len(self.graph.as_graph_def().SerializeToString())
        self.sess = tf.compat.v1.Session(graph=self.graph,
                                         config=session_config(bf16=amp_bf16))
        self.sess.run(init)
        if init_fn is not None:
            with self.graph.as_default():
                init_fn(self.sess)
        self.train = train

    def step_fn(self, rgb, labels):
        """A zero-argument callable running one step on this batch."""
        if self.train:
            fetch = [self.train_op, self.loss]
            feed = {self.rgb: rgb, self.labels: labels, self.train_mode: True}
        else:
            fetch = self.logits
            feed = {self.rgb: rgb}
        return lambda: self.sess.run(fetch, feed)

    def logits_of(self, rgb):
        feed = {self.rgb: rgb}
        if self.train:
            feed[self.train_mode] = False
        return self.sess.run(self.logits, feed)

    def gradients_of(self, rgb, labels):
        """All gradients (dropout off), flattened into one float64 vector."""
        grads = self.sess.run(self.grads, {self.rgb: rgb, self.labels: labels,
                                           self.train_mode: False})
        return np.concatenate([np.asarray(g, np.float64).ravel() for g in grads])

    def close(self):
        self.sess.close()


class KerasContestant:
    """``tf.keras.applications.VGG19`` with the same weights, compiled by Keras."""

    def __init__(self, name, weights, train, jit_compile="auto"):
        tf = _tf()
        self.name = name
        self.model = vgg_ref.keras_vgg19(weights, logits=True)
        if train:
            self.model.compile(
                optimizer=tf.keras.optimizers.SGD(LR),
                loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=jit_compile)
        else:
            self.model.compile(jit_compile=jit_compile)
        self.jit = self.model.jit_compile
        self.train = train

    def step_fn(self, rgb, labels):
        x = vgg_ref.preprocess_np(rgb)
        if self.train:
            return lambda: self.model.train_on_batch(x, labels)
        return lambda: self.model.predict_on_batch(x)

    def logits_of(self, rgb):
        return np.asarray(self.model.predict_on_batch(vgg_ref.preprocess_np(rgb)))

    def close(self):
        pass


def vgg_patch_builder(npy, attention, train, winograd=False):
    """build_fn for GraphContestant: vgg_patch.Vgg19 loading ``npy``."""
    def build(rgb, train_mode):
        from vgg_patch import Vgg19  # pylint: disable=import-outside-toplevel
        vgg = Vgg19(npy, trainable=train, attention=attention, winograd=winograd)
        vgg.build(rgb, train_mode)
        return vgg.fc8, None
    return build


def floor_builder(weights, train, dtype="float32", master_dtype=None):
    """build_fn for GraphContestant: the minimal bench-only graph VGG19."""
    def build(rgb, train_mode):
        tf = _tf()
        keep = None
        if train_mode is not None:
            keep = tf.where(train_mode, 0.5, 1.0)
        logits, variables = vgg_ref.graph_vgg19(
            rgb, dtype=dtype, dropout_keep=keep, master_dtype=master_dtype)
        return logits, lambda sess: vgg_ref.assign_weights(sess, variables, weights)
    return build


def _vgg_contestants(args, train):
    """Builds the contestants of the inference/train cases."""
    weights = vgg_ref.load_npy(args.npy)
    out = []
    variants = [("cbam", False, "vgg_patch CBAM"),
                (None, False, "vgg_patch no-attention"),
                ("cbam", True, "vgg_patch CBAM winograd")]
    if not train:
        # Its logits against Keras' show Winograd's round-off (no CBAM in the way).
        variants.append((None, True, "vgg_patch no-attention winograd"))
    for att, wino, label in variants:
        t0 = time.perf_counter()
        out.append(GraphContestant(
            label, vgg_patch_builder(args.npy, att, train, winograd=wino), train))
        _LOG.info("built %s in %.1f s", label, time.perf_counter() - t0)
    out.append(KerasContestant("Keras VGG19 (default, XLA)", weights, train))
    out.append(KerasContestant("Keras VGG19 (jit_compile=False)", weights, train,
                               jit_compile=False))
    if not train:
        # Training leaves the floor out: its graph runs the very same kernels as
        # vgg_patch's (checked with a step trace), and a training round costs
        # 15-45 s on 2 cores.
        out.append(GraphContestant("bench graph VGG19 (floor)",
                                   floor_builder(weights, train), train))
    return out, weights


def _throughput_rows(contestants, batch, times, case, cpu=None):
    rows = []
    for c in contestants:
        s = harness.summarize(times[c.name])
        row = {"case": case, "model": c.name, "batch": batch,
               "median_s": s["median_s"], "min_s": s["min_s"], "n": s["n"],
               "img_s": batch / s["median_s"],
               # Per round, for ratios paired round by round (report.py).
               "times_s": [round(t, 5) for t in times[c.name]]}
        if cpu:
            row["cpu_s"] = harness.summarize(cpu[c.name])["median_s"]
        rows.append(row)
    return rows


def case_vgg(args, train):
    """Inference (batch 1 and 16) or training (batch 16), interleaved."""
    contestants, _ = _vgg_contestants(args, train)
    result = {"rows": [], "checks": {}, "peak_rss_mib": None}
    rgb, _ = inputs(2, seed=7)
    ref = {c.name: c.logits_of(rgb) for c in contestants}
    keras_logits = ref["Keras VGG19 (default, XLA)"]
    scale = float(np.max(np.abs(keras_logits)))
    for name, logits in ref.items():
        result["checks"][name] = float(np.max(np.abs(logits - keras_logits)) / scale)
    batches = (16,) if train else (1, 16)
    for batch in batches:
        rgb, labels = inputs(batch)
        fns = {c.name: c.step_fn(rgb, labels) for c in contestants}
        if batch == 1:
            warm, reps = 2, harness.repeats(args, 15, 2)
        else:
            warm, reps = 1, harness.repeats(args, 6 if train else 10, 1)
        _LOG.info("timing batch %d: %d warm-up + %d interleaved rounds", batch, warm, reps)
        cpu = {}
        times = harness.interleaved(fns, warm, reps, cpu_out=cpu)
        for row in _throughput_rows(contestants, batch, times,
                                    "train" if train else "inference", cpu):
            result["rows"].append(row)
            harness.emit_row(row)
    result["peak_rss_mib"] = harness.mib(harness.peak_rss_bytes())
    for c in contestants:
        c.close()
    return result


def run_inference(args):
    """Case ``inference``: batch 1 and 16."""
    return case_vgg(args, train=False)


def run_train(args):
    """Case ``train``: batch 16."""
    return case_vgg(args, train=True)
