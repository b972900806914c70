"""Compatibility layer: makes tf-slim 1.1.0 run on current TensorFlow 2.x and NumPy 2.x.

tf-slim 1.1.0 (2020) looks names up in TensorFlow's private modules
(``tensorflow.python.ops.array_ops.stack``, ``ops.Tensor``, ...). TensorFlow
has since moved most of them into new modules, tf-keras moved its legacy layers
under ``tf_keras.src``, Keras 3 made ``tf.compat.v1.layers`` raise, and NumPy
removed some aliases. Each repair below puts the missing name back where
tf-slim (or TF1-era user code) looks for it, pointing at the object that now
lives elsewhere. No tf-slim code is copied.

Rules every repair follows:

* **additive** -- a name is only added where it is missing; an existing
  attribute or module is never replaced. (The one routing repair,
  :func:`_route_v1_layers_to_tf_keras`, keeps TensorFlow's own lazy-loader
  object and only chooses the target that ``TF_USE_LEGACY_KERAS=1`` would have
  chosen; it leaves a loader already routed to tf-keras or to Keras 2 alone.
  Likewise :func:`_register_legacy_layers_call_context` wraps the call-context
  function tf-keras registered with TensorFlow, answering as before for
  everything but TensorFlow's own legacy layers.)
* **idempotent** -- :func:`apply` may run any number of times; later runs
  change nothing.
* applied on ``import slim_attention``.

Each table entry or function carries a one-line comment: what moved where,
and since which TensorFlow/NumPy version.
"""
import builtins
import functools
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
import warnings

import numpy as np

_LOG = logging.getLogger(__name__)

# (module that lost the name, name, module that has it now, name there).
# One-line comment per entry: what moved where, since which TF version (where
# the exact release is not known, the comment says it is gone by TF 2.21).
_MOVED_ATTRIBUTES = (
    # array_ops.stack -> array_ops_stack.stack (TF 2.13).
    ("tensorflow.python.ops.array_ops", "stack",
     "tensorflow.python.ops.array_ops_stack", "stack"),
    # array_ops.unstack -> array_ops_stack.unstack (TF 2.13).
    ("tensorflow.python.ops.array_ops", "unstack",
     "tensorflow.python.ops.array_ops_stack", "unstack"),
    # ops.Tensor -> framework/tensor.py Tensor (TF 2.13-2.14 split; ops alias gone by 2.21).
    ("tensorflow.python.framework.ops", "Tensor",
     "tensorflow.python.framework.tensor", "Tensor"),
    # ops.IndexedSlices -> framework/indexed_slices.py (ops alias gone by TF 2.21).
    ("tensorflow.python.framework.ops", "IndexedSlices",
     "tensorflow.python.framework.indexed_slices", "IndexedSlices"),
    # control_flow_ops.cond -> ops/cond.py cond (TF 2.14), differentiable after a run as TF1's.
    ("tensorflow.python.ops.control_flow_ops", "cond",
     "slim_attention._compat", "cond_differentiable_after_run"),
    # control_flow_ops.case -> ops/control_flow_case.py case (TF 2.14).
    ("tensorflow.python.ops.control_flow_ops", "case",
     "tensorflow.python.ops.control_flow_case", "case"),
    # control_flow_ops.Assert -> ops/control_flow_assert.py (TF 2.13-2.14 split).
    ("tensorflow.python.ops.control_flow_ops", "Assert",
     "tensorflow.python.ops.control_flow_assert", "Assert"),
    # control_flow_ops.while_loop -> ops/while_loop.py (TF 2.13-2.14 split).
    ("tensorflow.python.ops.control_flow_ops", "while_loop",
     "tensorflow.python.ops.while_loop", "while_loop"),
    # variables.VariableV1 -> ops/variable_v1.py (TF 2.13-2.14 split; gone by 2.21).
    ("tensorflow.python.ops.variables", "VariableV1",
     "tensorflow.python.ops.variable_v1", "VariableV1"),
    # variable_scope.variable (TF1's tf.Variable) -> variable_v1.VariableV1 (gone by TF 2.21).
    ("tensorflow.python.ops.variable_scope", "variable",
     "tensorflow.python.ops.variable_v1", "VariableV1"),
    # variable_scope.enable_resource_variables -> resource_variables_toggle (gone by TF 2.21).
    ("tensorflow.python.ops.variable_scope", "enable_resource_variables",
     "tensorflow.python.ops.resource_variables_toggle", "enable_resource_variables"),
    # variable_scope.disable_resource_variables -> resource_variables_toggle (gone by 2.21).
    ("tensorflow.python.ops.variable_scope", "disable_resource_variables",
     "tensorflow.python.ops.resource_variables_toggle", "disable_resource_variables"),
    # variable_scope.resource_variables_enabled -> resource_variables_toggle (gone by 2.21).
    ("tensorflow.python.ops.variable_scope", "resource_variables_enabled",
     "tensorflow.python.ops.resource_variables_toggle", "resource_variables_enabled"),
)

# (old package name, package it moved to, its submodules). TensorFlow lazily
# imports the old names (``tensorflow/python/layers/normalization.py`` loads
# ``tf_keras.legacy_tf_layers.normalization`` for ``slim.batch_norm``).
_MOVED_PACKAGES = (
    # tf_keras.legacy_tf_layers -> tf_keras.src.legacy_tf_layers (tf-keras 2.16).
    ("tf_keras.legacy_tf_layers", "tf_keras.src.legacy_tf_layers",
     ("base", "convolutional", "core", "normalization", "pooling",
      "variable_scope_shim")),
)

# tf.compat.v1 submodules that TensorFlow serves from Keras; under Keras 3 every
# attribute of them raises "`dense` is not available with Keras 3" (TF 2.16):
# tf.compat.v1.layers and tf.compat.v1.nn.rnn_cell.
# (KerasLazyLoader submodule, tf-keras module that TF_USE_LEGACY_KERAS=1 would load).
_KERAS_ROUTED_V1_MODULES = (
    # tf.compat.v1.layers -> tf-keras legacy layers (Keras 3 is the default since TF 2.16).
    ("__internal__.legacy.layers",
     "tf_keras.api._v1.keras.__internal__.legacy.layers"),
    # tf.compat.v1.nn.rnn_cell -> tf-keras legacy RNN cells (same loader, same TF 2.16 switch).
    ("__internal__.legacy.rnn_cell",
     "tf_keras.api._v1.keras.__internal__.legacy.rnn_cell"),
)

# NumPy names removed in NumPy 1.24/2.0 that TF1-era code (tf-slim's own tests
# included) still uses: the aliases of Python builtins, used as dtypes
# (``np.zeros(3, dtype=np.object)``), and ``np.product``.
# (NumPy 2.0 brought ``np.bool`` back; ``np.str`` is left out because NumPy
# reserves that name for its own scalar type.)
_NUMPY_REMOVED_ALIASES = (
    ("bool", builtins.bool),  # np.bool -> bool (removed in 1.24; NumPy 2's own kept).
    ("object", builtins.object),  # np.object -> object (removed in NumPy 1.24).
    ("int", builtins.int),  # np.int -> int (removed in NumPy 1.24).
    ("float", builtins.float),  # np.float -> float (removed in NumPy 1.24).
    ("complex", builtins.complex),  # np.complex -> complex (removed in NumPy 1.24).
    ("product", np.prod),  # np.product -> np.prod (removed in NumPy 2.0).
)
# Not repairable: ``ndarray.tostring`` (deprecated in NumPy 1.19, removed in 2.3;
# use ``tobytes``).
# ``numpy.ndarray`` is an immutable built-in type, so no attribute can be added.

_applied = []  # Names of the repairs the last apply() actually made (for logs/tests).


def _has_attribute(obj, name):
    """True if ``obj.name`` exists.

    ``__dict__`` is checked first; only a name not found there goes through
    ``getattr``, so a module-level ``__getattr__`` hook (TensorFlow's lazy
    names) can still supply it. NumPy's hook warns before raising for its
    removed aliases; that warning is silenced.
    """
    namespace = getattr(obj, "__dict__", None)
    if isinstance(namespace, dict) and name in namespace:
        return True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NumPy warns on removed aliases.
            getattr(obj, name)
    except AttributeError:
        return False
    return True


def _add_attribute(obj, name, value, label):
    """Sets ``obj.name = value`` only when missing. Returns True if it was added."""
    if _has_attribute(obj, name):
        return False
    setattr(obj, name, value)
    _applied.append(label)
    _LOG.debug("slim_attention compat: added %s", label)
    return True


def _repair_moved_attributes():
    """Puts each name of ``_MOVED_ATTRIBUTES`` back on the module that lost it."""
    for old_module, old_name, new_module, new_name in _MOVED_ATTRIBUTES:
        try:
            target = importlib.import_module(old_module)
            source = importlib.import_module(new_module)
        except ImportError:
            # Older TensorFlow: the name never moved, nothing to repair.
            continue
        if not hasattr(source, new_name):
            continue
        _add_attribute(target, old_name, getattr(source, new_name),
                       "%s.%s" % (old_module, old_name))


def _repair_moved_packages():
    """Registers each old package name of ``_MOVED_PACKAGES`` as an alias of the new one.

    The package and every submodule are aliased (``sys.modules`` entries), so
    importing an old name returns the very module objects of the new package
    and no second copy of a module (with its own classes) is ever created.
    """
    for old_name, new_name, submodules in _MOVED_PACKAGES:
        if old_name in sys.modules:
            continue
        parent_name, _, child = old_name.rpartition(".")
        try:
            parent = importlib.import_module(parent_name)
            if importlib.util.find_spec(old_name) is not None:
                continue  # The old name still imports: nothing moved.
            modules = {name: importlib.import_module(new_name + "." + name)
                       for name in submodules}
            package = importlib.import_module(new_name)
        except ImportError:
            _LOG.debug("slim_attention compat: %s not available", new_name)
            continue
        for name, module in modules.items():
            sys.modules.setdefault(old_name + "." + name, module)
        sys.modules[old_name] = package
        _add_attribute(parent, child, package, old_name)


def _keras_is_3_or_missing():
    """True when ``import keras`` would give Keras 3 or fail (no import is done)."""
    try:
        return importlib.metadata.version("keras").startswith("3.")
    except importlib.metadata.PackageNotFoundError:
        return True


def _keras_loaders(submodule):
    """Yields every ``KerasLazyLoader`` for ``submodule`` in TensorFlow's API modules.

    TensorFlow keeps several copies of the ``tf.compat.v1`` namespace
    (``tensorflow._api.v2.compat.v1``, ``tensorflow.compat.v1``, the
    ``compat.v1`` inside ``compat.v1`` and ``compat.v2``), each with its own loader.
    """
    from tensorflow.python.util import lazy_loader
    seen = set()
    for name, module in list(sys.modules.items()):
        if not name.startswith("tensorflow") or module is None:
            continue
        namespaces = [getattr(module, "__dict__", None)]
        wrapped = namespaces[0].get("_tfmw_wrapped_module") if isinstance(
            namespaces[0], dict) else None
        namespaces.append(getattr(wrapped, "__dict__", None))
        for namespace in namespaces:
            if not isinstance(namespace, dict):
                continue
            for value in list(namespace.values()):
                if (isinstance(value, lazy_loader.KerasLazyLoader)
                        and id(value) not in seen
                        and value.__dict__.get("_tfll_submodule") == submodule
                        and value.__dict__.get("_tfll_mode") == "v1"):
                    seen.add(id(value))
                    yield value


def _route_v1_layers_to_tf_keras():
    """Routes ``tf.compat.v1.layers`` (and ``nn.rnn_cell``) to tf-keras under Keras 3.

    TensorFlow serves ``tf.compat.v1.layers`` through a ``KerasLazyLoader``
    that picks its target the first time it is used: tf-keras when
    ``TF_USE_LEGACY_KERAS`` was set before TensorFlow was imported, Keras 3
    otherwise, where every attribute raises. This gives each such loader the
    target ``TF_USE_LEGACY_KERAS=1`` would have given it, so the layers work
    no matter when TensorFlow was imported, while ``tf.keras`` stays Keras 3.
    Loaders already routed to tf-keras or Keras 2 are left alone.
    """
    try:
        import tf_keras  # noqa: F401  (the repair needs tf-keras installed)
        from tensorflow.python.util import lazy_loader
        # ``import tensorflow.compat.v1`` builds a fresh copy of the namespace
        # (with fresh loaders) the first time that name is imported; build it
        # now, so a later ``import tensorflow.compat.v1 as tf`` reuses it.
        importlib.import_module("tensorflow.compat.v1")
    except ImportError:
        return
    if os.environ.get("TF_USE_LEGACY_KERAS", None) in ("true", "True", "1"):
        return  # TensorFlow routes these to tf-keras itself.
    if not _keras_is_3_or_missing():
        return  # Keras 2 still serves tf.compat.v1.layers.
    for submodule, package in _KERAS_ROUTED_V1_MODULES:
        for loader in _keras_loaders(submodule):
            if (loader.__dict__.get("_tfll_initialized")
                    and loader.__dict__.get("_tfll_keras_version") != "keras_3"):
                continue  # Already routed to tf-keras or Keras 2.
            # The same two steps KerasLazyLoader._initialize takes for tf-keras.
            loader._tfll_initialized = True
            loader._tfll_keras_version = "tf_keras"
            lazy_loader.LazyLoader.__init__(
                loader, loader.__dict__["_tfll_name"],
                loader.__dict__["_tfll_parent_module_globals"], package)
            _applied.append("tf.compat.v1 %s -> %s" % (submodule, package))


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


def _register_legacy_layers_call_context():
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
    """
    from tensorflow.python.util import keras_deps
    legacy = _legacy_layers_call_context()
    registered = keras_deps.get_call_context_function()
    if legacy is None or registered is None or registered is legacy:
        return
    if getattr(registered, "_slim_attention_wraps", None) is not None:
        return  # already this repair

    def call_context():
        context = registered()
        if context.layer is None and legacy().layer is not None:
            return legacy()
        return context

    call_context._slim_attention_wraps = registered
    keras_deps.register_call_context_function(call_context)
    _applied.append("keras_deps call context: + tensorflow.python.keras layers")


def _assign_from_checkpoint_with_partitions(original):
    """tf-slim's ``assign_from_checkpoint``, with partitioned variables restorable again.

    tf-slim cuts a partition out of the checkpoint value with
    ``value[[slice, ...]]``, an IndexError since NumPy 1.23. Variables that are
    not partitions go to tf-slim's own function unchanged; each partition is
    fed its slice, cut with a tuple of slices, through a placeholder and an
    assign op named as tf-slim names them.
    """
    import tensorflow.compat.v1 as tf1

    @functools.wraps(original)
    def assign_from_checkpoint(model_path, var_list, ignore_missing_vars=False):
        if isinstance(var_list, (tuple, list)):
            grouped = {}
            for var in var_list:
                grouped.setdefault(original.__globals__["get_variable_full_name"](var),
                                   []).append(var)
        else:
            grouped = {name: list(value) if isinstance(value, (tuple, list)) else [value]
                       for name, value in var_list.items()}
        parts = {name: [v for v in group if v._save_slice_info]
                 for name, group in grouped.items()}
        if not any(parts.values()):
            return original(model_path, var_list, ignore_missing_vars)
        rest = {name: [v for v in group if not v._save_slice_info]
                for name, group in grouped.items()}
        assign_op, feed_dict = original(
            model_path, {name: group for name, group in rest.items() if group},
            ignore_missing_vars)
        reader = tf1.train.NewCheckpointReader(model_path)
        assign_ops = [assign_op]
        for name, group in parts.items():
            if not group:
                continue
            if not reader.has_tensor(name):
                if not ignore_missing_vars:
                    raise ValueError("Checkpoint is missing variable [%s]" % name)
                _LOG.warning("Checkpoint is missing variable [%s]", name)
                continue
            value = reader.get_tensor(name)
            for var in group:
                info = var._save_slice_info
                placeholder = tf1.placeholder(var.dtype.base_dtype, var.get_shape(),
                                              name="placeholder/" + var.op.name)
                assign_ops.append(var.assign(placeholder))
                cut = tuple(slice(start, start + size)
                            for start, size in zip(info.var_offset, info.var_shape))
                feed_dict[placeholder] = value[cut].reshape(info.var_shape)
        return tf1.group(*assign_ops), feed_dict

    return assign_from_checkpoint


# tf-slim functions whose own code fails on NumPy 2; no name is missing, so
# each is wrapped once, and every module holding the original gets the wrapper.
# (module, function name, factory making the wrapper from the original).
_REPAIRED_FUNCTIONS = (
    # assign_from_checkpoint: partitions cut with a list of slices (IndexError since NumPy 1.23).
    ("tf_slim.ops.variables", "assign_from_checkpoint",
     _assign_from_checkpoint_with_partitions),
)


def _repair_functions():
    """Wraps each function of ``_REPAIRED_FUNCTIONS``, in every module holding it."""
    for module_name, name, factory in _REPAIRED_FUNCTIONS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        original = getattr(module, name, None)
        if original is None or getattr(original, "_slim_attention_repair", False):
            continue
        repaired = factory(original)
        repaired._slim_attention_repair = True
        for holder in list(sys.modules.values()):
            namespace = getattr(holder, "__dict__", None)
            if (isinstance(namespace, dict) and namespace.get(name) is original
                    and getattr(holder, "__name__", "").split(".")[0]
                    in ("tf_slim", "slim_attention")):
                setattr(holder, name, repaired)
        _applied.append("%s.%s" % (module_name, name))


def _repair_numpy_aliases():
    """Adds back the removed NumPy names of ``_NUMPY_REMOVED_ALIASES``."""
    for name, value in _NUMPY_REMOVED_ALIASES:
        _add_attribute(np, name, value, "numpy.%s" % name)


def apply():
    """Applies every repair. Additive (never replaces a name) and idempotent.

    Returns:
      A list of the repairs this call made, e.g.
      ``['tensorflow.python.ops.array_ops.stack', ...]``; empty when every
      name was already in place (a second call returns ``[]``).
    """
    del _applied[:]
    _repair_moved_attributes()
    _repair_moved_packages()
    _route_v1_layers_to_tf_keras()
    _register_legacy_layers_call_context()
    _repair_numpy_aliases()
    _repair_functions()
    if _applied:
        _LOG.debug("slim_attention compat: %d repairs applied", len(_applied))
    return list(_applied)
