"""Compatibility repairs: conditionals that can be differentiated after their graph has run.

TF1's cond (``Switch``/``Merge``) could be differentiated at any time; TF2's
(one ``If`` op) only before a session has run it, unless it was built with
all its intermediates as outputs. :func:`cond_differentiable_after_run` is
what tf-slim gets as ``control_flow_ops.cond`` (see
:mod:`slim_attention._compat`'s table), and
:func:`register_legacy_layers_call_context` gives conds built inside
TensorFlow's own legacy layers (``slim.dropout``) the same. Applied by
:func:`slim_attention._compat.apply`.
"""


def cond_differentiable_after_run(pred, true_fn=None, false_fn=None, strict=False,
                                  name=None, fn1=None, fn2=None):
    """``tf.compat.v1.cond`` whose gradient can still be built after its graph has run.

    What tf-slim (``utils.smart_cond`` for a tensor ``is_training``, metrics,
    ``tfexample_decoder``) gets as ``control_flow_ops.cond``. TF1's cond
    (``Switch``/``Merge``) could be differentiated at any time: build, run the
    forward pass, then add ``minimize`` and train. TF2's cond is one ``If`` op
    that exposes only its outputs; a gradient built later needs its
    intermediates as new outputs of an op the session already holds, and fails
    with "Connecting to invalid output 1 of source node cond ... Try using
    tf.compat.v1.experimental.output_all_intermediates(True)". This builds the
    cond with that switch on, for this cond only (Keras layers get the same
    from TensorFlow). The switch is left as it is when the caller set it
    (``output_all_intermediates(False)`` wins), inside a ``tf.function`` or XLA
    context (where TensorFlow never outputs intermediates) and when executing
    eagerly; under v1 control flow it changes nothing.
    """
    from tensorflow.python.eager import context
    from tensorflow.python.framework import ops
    from tensorflow.python.ops import cond as cond_lib
    from tensorflow.python.ops import control_flow_util
    from tensorflow.python.ops import control_flow_util_v2 as util_v2

    def build():
        return cond_lib.cond(pred, true_fn=true_fn, false_fn=false_fn, strict=strict,
                             name=name, fn1=fn1, fn2=fn2)

    if (util_v2._EXPERIMENTAL_OUTPUT_ALL_INTERMEDIATES_OVERRIDE is not None
            or context.executing_eagerly() or util_v2.in_defun()
            or control_flow_util.GraphOrParentsInXlaContext(ops.get_default_graph())):
        return build()
    util_v2._EXPERIMENTAL_OUTPUT_ALL_INTERMEDIATES_OVERRIDE = True
    try:
        return build()
    finally:
        util_v2._EXPERIMENTAL_OUTPUT_ALL_INTERMEDIATES_OVERRIDE = None


def _legacy_layers_call_context():
    """TensorFlow's in-tree Keras call context, or None if that Keras is gone."""
    try:
        from tensorflow.python.keras.engine import base_layer_utils
    except ImportError:
        return None
    return base_layer_utils.call_context


def register_legacy_layers_call_context():
    """Lets conds built inside ``tensorflow.python.layers`` layers be differentiated later.

    TensorFlow builds a cond inside a Keras layer with all its intermediates as
    outputs (so a gradient can be added after the graph has run, as with TF1
    layers); it asks the one call-context function registered in
    ``keras_deps`` whether a layer is being built. tf-keras registers its own,
    so layers of the Keras copy still inside TensorFlow --
    ``tensorflow.python.layers.core.Dropout``, which ``slim.dropout`` uses --
    are no longer seen, and ``slim.dropout(is_training=placeholder)`` cannot be
    differentiated once its graph has run. This registers a function that
    answers with the registered context while it has a layer, else with the
    in-tree one; every other caller sees the registered context as before.
    (``keras_deps`` keeps one function; in-tree Keras never registered one.)

    Returns:
      The list of the repairs made (empty, or one entry).
    """
    from tensorflow.python.util import keras_deps
    legacy = _legacy_layers_call_context()
    registered = keras_deps.get_call_context_function()
    if legacy is None or registered is None or registered is legacy:
        return []
    if getattr(registered, "_slim_attention_wraps", None) is not None:
        return []  # already this repair

    def call_context():
        context = registered()
        if context.layer is None and legacy().layer is not None:
            return legacy()
        return context

    call_context._slim_attention_wraps = registered
    keras_deps.register_call_context_function(call_context)
    return ["keras_deps call context: + tensorflow.python.keras layers"]
