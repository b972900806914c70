"""Compatibility layer: makes tf-slim 1.1.0 run on current TensorFlow 2.x and NumPy 2.x.

tf-slim 1.1.0 (2020) looks names up in TensorFlow's private modules
(``tensorflow.python.ops.array_ops.stack``, ``ops.Tensor``, ...). TensorFlow
has since moved most of them into new modules, tf-keras moved its legacy layers
under ``tf_keras.src``, Keras 3 made ``tf.compat.v1.layers`` raise, and NumPy
removed some aliases. Each repair below puts the missing name back where
tf-slim (or TF1-era user code) looks for it, pointing at the object that now
lives elsewhere. No tf-slim code is copied.

This module holds the tables of moved names (and their repairs) and
:func:`apply`; the repairs that do more than add a name live beside it, one
concern each:

* :mod:`slim_attention._compat_keras` -- ``tf.compat.v1.layers`` under Keras 3;
* :mod:`slim_attention._compat_control_flow` -- conds differentiable after a run;
* :mod:`slim_attention._compat_checkpoint` -- ``assign_from_checkpoint`` with
  partitioned variables.

Rules every repair follows:

* **additive** -- a name is only added where it is missing; an existing
  attribute or module is never replaced. (The one routing repair,
  :func:`slim_attention._compat_keras.route_v1_layers_to_tf_keras`, keeps
  TensorFlow's own lazy-loader object and only chooses the target that
  ``TF_USE_LEGACY_KERAS=1`` would have chosen; it leaves a loader already
  routed to tf-keras or to Keras 2 alone. Likewise
  :func:`slim_attention._compat_control_flow.register_legacy_layers_call_context`
  wraps the call-context function tf-keras registered with TensorFlow,
  answering as before for everything but TensorFlow's own legacy layers.)
* **idempotent** -- :func:`apply` may run any number of times; later runs
  change nothing.
* applied on ``import slim_attention``.

Each table entry or function carries a one-line comment: what moved where,
and since which TensorFlow/NumPy version.
"""
import builtins
import importlib
import importlib.util
import logging
import sys
import warnings

import numpy as np

from slim_attention import _compat_checkpoint
from slim_attention import _compat_control_flow
from slim_attention import _compat_keras

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
     "slim_attention._compat_control_flow", "cond_differentiable_after_run"),
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
    """Sets ``obj.name = value`` only when missing. Returns ``[label]`` if it
    was added, else ``[]``."""
    if _has_attribute(obj, name):
        return []
    setattr(obj, name, value)
    _LOG.debug("slim_attention compat: added %s", label)
    return [label]


def _repair_moved_attributes():
    """Puts each name of ``_MOVED_ATTRIBUTES`` back on the module that lost it."""
    made = []
    for old_module, old_name, new_module, new_name in _MOVED_ATTRIBUTES:
        try:
            target = importlib.import_module(old_module)
            source = importlib.import_module(new_module)
        except ImportError:
            # Older TensorFlow: the name never moved, nothing to repair.
            continue
        if not hasattr(source, new_name):
            continue
        made += _add_attribute(target, old_name, getattr(source, new_name),
                               "%s.%s" % (old_module, old_name))
    return made


def _repair_moved_packages():
    """Registers each old package name of ``_MOVED_PACKAGES`` as an alias of the new one.

    The package and every submodule are aliased (``sys.modules`` entries), so
    importing an old name returns the very module objects of the new package
    and no second copy of a module (with its own classes) is ever created.
    """
    made = []
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
        made += _add_attribute(parent, child, package, old_name)
    return made


def _repair_numpy_aliases():
    """Adds back the removed NumPy names of ``_NUMPY_REMOVED_ALIASES``."""
    return [label for name, value in _NUMPY_REMOVED_ALIASES
            for label in _add_attribute(np, name, value, "numpy.%s" % name)]


# Every repair, in the order apply() makes them; each returns what it did.
_REPAIRS = (
    _repair_moved_attributes,
    _repair_moved_packages,
    _compat_keras.route_v1_layers_to_tf_keras,
    _compat_control_flow.register_legacy_layers_call_context,
    _repair_numpy_aliases,
    _compat_checkpoint.repair_functions,
)


def apply():
    """Applies every repair. Additive (never replaces a name) and idempotent.

    Returns:
      A list of the repairs this call made, e.g.
      ``['tensorflow.python.ops.array_ops.stack', ...]``; empty when every
      name was already in place (a second call returns ``[]``).
    """
    applied = [label for repair in _REPAIRS for label in repair()]
    if applied:
        _LOG.debug("slim_attention compat: %d repairs applied", len(applied))
    return applied
