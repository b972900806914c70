"""``install_contrib_alias()``: make ``tensorflow.contrib.slim`` importable again.

TensorFlow 2 removed ``tf.contrib``. TF1 code says ``import
tensorflow.contrib.slim as slim``, ``slim = tf.contrib.slim`` or
``tf.contrib.layers.xavier_initializer()``. After one opt-in call::

    import tensorflow.compat.v1 as tf
    import slim_attention
    slim_attention.install_contrib_alias()

    import tensorflow.contrib.slim as slim                  # slim_attention
    from tensorflow.contrib.slim.nets import resnet_v1      # tf_slim.nets.resnet_v1
    init = tf.contrib.layers.variance_scaling_initializer()  # tf_slim.layers

that code runs unmodified. Only what tf-slim provides is aliased:

* ``tensorflow.contrib.slim`` -> :mod:`slim_attention` (tf-slim's API, repaired);
* ``tensorflow.contrib.slim.nets`` -> ``tf_slim.nets``;
* ``tensorflow.contrib.layers`` -> ``tf_slim.layers`` (``xavier_initializer``,
  ``variance_scaling_initializer``, ``l2_regularizer``, ``conv2d``, ...).

The other ``tf.contrib`` packages (``rnn``, ``seq2seq``, ...) are not provided;
using one raises ``AttributeError``/``ModuleNotFoundError`` as before.

The call is opt-in (``import slim_attention`` alone does not add
``tf.contrib``), additive (an existing ``tensorflow.contrib`` module or
attribute is never replaced) and idempotent.
"""
import importlib
import logging
import sys
import types

_LOG = logging.getLogger(__name__)

_CONTRIB = "tensorflow.contrib"


def _tensorflow_namespaces():
    """The module objects a user reaches as ``tf``: ``tensorflow`` and every
    copy of ``tensorflow.compat.v1`` (TensorFlow keeps several)."""
    importlib.import_module("tensorflow")
    # Import the name now, so a later ``import tensorflow.compat.v1 as tf``
    # reuses this module instead of building a fresh copy without ``contrib``.
    importlib.import_module("tensorflow.compat.v1")
    names = ["tensorflow"] + sorted(
        name for name in sys.modules
        if name.startswith("tensorflow") and name.endswith("compat.v1"))
    return [sys.modules[name] for name in names if sys.modules.get(name) is not None]


def _alias_module(name, module):
    """Registers ``module`` under ``name`` in ``sys.modules`` unless ``name`` exists."""
    if name not in sys.modules:
        sys.modules[name] = module
    return sys.modules[name]


def install_contrib_alias():
    """Makes ``tensorflow.contrib.slim`` and ``tensorflow.contrib.layers`` importable.

    Registers the modules ``tensorflow.contrib``, ``tensorflow.contrib.slim``
    (this package), ``tensorflow.contrib.slim.nets`` and
    ``tensorflow.contrib.layers`` (tf-slim's layers) and sets ``contrib`` on
    ``tensorflow`` and on ``tensorflow.compat.v1``. Nothing that already
    exists is replaced, so calling it again changes nothing.

    Returns:
      The ``tensorflow.contrib`` module.
    """
    import slim_attention

    # By module name: the attribute ``tf_slim.layers`` is shadowed by the
    # submodule ``tf_slim.layers.layers`` (tf_slim/__init__ star-imports it).
    slim_layers = importlib.import_module("tf_slim.layers")
    slim_nets = importlib.import_module("tf_slim.nets")

    contrib = sys.modules.get(_CONTRIB)
    if contrib is None:
        contrib = types.ModuleType(
            _CONTRIB, "tf.contrib as slim_attention provides it: slim and layers.")
        contrib.__path__ = []  # a package, so ``import tensorflow.contrib.x`` is tried
        sys.modules[_CONTRIB] = contrib
    slim = _alias_module(_CONTRIB + ".slim", slim_attention)
    _alias_module(_CONTRIB + ".slim.nets", slim_nets)
    layers = _alias_module(_CONTRIB + ".layers", slim_layers)
    for name, value in (("slim", slim), ("layers", layers)):
        if not hasattr(contrib, name):
            setattr(contrib, name, value)
    for namespace in _tensorflow_namespaces():
        if not hasattr(namespace, "contrib"):
            setattr(namespace, "contrib", contrib)
            _LOG.debug("slim_attention: set %s.contrib", namespace.__name__)
    return contrib
