"""Compatibility repair: ``tf.compat.v1.layers`` (and ``nn.rnn_cell``) under Keras 3.

TensorFlow serves these two ``tf.compat.v1`` submodules from Keras; under
Keras 3 (the default since TF 2.16) every attribute of them raises
"`dense` is not available with Keras 3". The repair routes them to tf-keras,
the target ``TF_USE_LEGACY_KERAS=1`` would have chosen. Applied by
:func:`slim_attention._compat.apply`.
"""
import importlib
import importlib.metadata
import os
import sys

# tf.compat.v1 submodules that TensorFlow serves from Keras; under Keras 3 every
# attribute of them raises "`dense` is not available with Keras 3" (TF 2.16):
# tf.compat.v1.layers and tf.compat.v1.nn.rnn_cell.
# (KerasLazyLoader submodule, tf-keras module that TF_USE_LEGACY_KERAS=1 would load).
KERAS_ROUTED_V1_MODULES = (
    # tf.compat.v1.layers -> tf-keras legacy layers (Keras 3 is the default since TF 2.16).
    ("__internal__.legacy.layers",
     "tf_keras.api._v1.keras.__internal__.legacy.layers"),
    # tf.compat.v1.nn.rnn_cell -> tf-keras legacy RNN cells (same loader, same TF 2.16 switch).
    ("__internal__.legacy.rnn_cell",
     "tf_keras.api._v1.keras.__internal__.legacy.rnn_cell"),
)


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


def route_v1_layers_to_tf_keras():
    """Routes ``tf.compat.v1.layers`` (and ``nn.rnn_cell``) to tf-keras under Keras 3.

    TensorFlow serves ``tf.compat.v1.layers`` through a ``KerasLazyLoader``
    that picks its target the first time it is used: tf-keras when
    ``TF_USE_LEGACY_KERAS`` was set before TensorFlow was imported, Keras 3
    otherwise, where every attribute raises. This gives each such loader the
    target ``TF_USE_LEGACY_KERAS=1`` would have given it, so the layers work
    no matter when TensorFlow was imported, while ``tf.keras`` stays Keras 3.
    Loaders already routed to tf-keras or Keras 2 are left alone.

    Returns:
      The list of the repairs made (one entry per routed loader).
    """
    made = []
    try:
        import tf_keras  # noqa: F401  (the repair needs tf-keras installed)
        from tensorflow.python.util import lazy_loader
        # ``import tensorflow.compat.v1`` builds a fresh copy of the namespace
        # (with fresh loaders) the first time that name is imported; build it
        # now, so a later ``import tensorflow.compat.v1 as tf`` reuses it.
        importlib.import_module("tensorflow.compat.v1")
    except ImportError:
        return made
    if os.environ.get("TF_USE_LEGACY_KERAS", None) in ("true", "True", "1"):
        return made  # TensorFlow routes these to tf-keras itself.
    if not _keras_is_3_or_missing():
        return made  # Keras 2 still serves tf.compat.v1.layers.
    for submodule, package in KERAS_ROUTED_V1_MODULES:
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
            made.append("tf.compat.v1 %s -> %s" % (submodule, package))
    return made
