"""``install_contrib_alias()``: make TF1's ``tf.contrib`` names that tf-slim replaced work again.

TensorFlow 2 removed ``tf.contrib``. TF1 code says ``import
tensorflow.contrib.slim as slim``, ``arg_scope = tf.contrib.framework.arg_scope``
or ``tf.contrib.layers.xavier_initializer()``. After one opt-in call::

    import tensorflow.compat.v1 as tf
    import slim_attention
    slim_attention.install_contrib_alias()

    import tensorflow.contrib.slim as slim                    # slim_attention
    from tensorflow.contrib.slim.nets import resnet_v1        # slim_attention.nets.resnet_v1
    from tensorflow.contrib.framework import arg_scope        # tf_slim's arg_scope
    loss = tf.contrib.losses.softmax_cross_entropy(logits, onehot_labels)
    train_op = tf.contrib.training.create_train_op(loss, optimizer)

that code runs unmodified. What is provided, module by module, is TF 1.15's
public API of that module, each name mapped to the object that replaced it
(the table is :mod:`slim_attention._contrib_names`):

* ``tf.contrib.slim`` -> :mod:`slim_attention` (tf-slim's API, repaired), and
  ``tf.contrib.slim.nets`` -> :mod:`slim_attention.nets` in every import form
  (tf-slim's networks with ``attention_module``; the networks it does not wrap,
  ``alexnet``, ``overfeat``, ..., are tf-slim's modules); TF1's own path to
  them, ``tensorflow.contrib.slim.python.slim.nets``, gives the same modules;
* ``tf.contrib.framework`` -- ``arg_scope``, ``add_arg_scope``, the
  ``get_variables*``/``model_variable``/global-step helpers,
  ``assign_from_checkpoint_fn``, ... (tf-slim), plus the few names that were
  TensorFlow's own functions re-exported (``sort``, ``is_tensor``,
  ``load_checkpoint``, ...);
* ``tf.contrib.layers`` -- layers, initializers, regularizers, summaries,
  ``optimize_loss`` (tf-slim);
* ``tf.contrib.losses`` -- contrib's losses, with contrib's argument order
  (``softmax_cross_entropy(logits, onehot_labels)``), and ``metric_learning``;
* ``tf.contrib.metrics`` -- the ``streaming_*`` metrics and the rest (tf-slim);
  ``set_*`` and ``confusion_matrix`` are TensorFlow's;
* ``tf.contrib.training`` -- ``create_train_op``, ``train``,
  ``evaluate_once``, ``evaluate_repeatedly``, the hooks (tf-slim).

The TF1 module paths research code imported from are there too:
``tensorflow.contrib.framework.python.ops`` (and its ``arg_scope`` and
``variables``), ``tensorflow.contrib.layers.python.layers`` (and ``layers``,
``initializers``, ``regularizers``, ``utils``, ...),
``tensorflow.contrib.slim.python.slim`` (``learning``, ``evaluation``,
``nets.*``, ``data.*``, ...; in both import forms: ``import
tensorflow.contrib.slim.python.slim.nets.inception_v3 as inception_v3`` walks
attributes from ``tf.contrib.slim``, so :mod:`slim_attention` gets TF1's
``python`` attribute, the one attribute set on a module of this package),
``tensorflow.contrib.losses.python.losses``,
``tensorflow.contrib.metrics.python.ops.metric_ops`` and
``tensorflow.contrib.training.python.training.{training,evaluation}``.

What TF1 had and nothing here provides -- other ``tf.contrib`` packages
(``rnn``, ``quantize``, ``seq2seq``, ...), feature columns,
``tf.contrib.training.HParams``, ``tf.contrib.framework.nest``, ... -- raises
an error naming the symbol and what replaces it today:
:class:`ContribNameError` (an ``AttributeError``, so ``hasattr`` is
``False``) for an attribute, ``ModuleNotFoundError`` for an import. A name
TF1 never had gives a plain ``AttributeError``.

The call is opt-in (``import slim_attention`` alone does not add
``tf.contrib``), additive (a module or attribute that already exists is
never replaced) and idempotent (a second call changes nothing).
"""
import importlib
import logging
import sys
import types

from slim_attention import _contrib_names

_LOG = logging.getLogger(__name__)

_CONTRIB = "tensorflow.contrib"

# name -> module, for every module install_contrib_alias registered or found.
_REGISTERED = {}

# The packages made here that TF1 code reaches by attributes of a real module:
# ``import tensorflow.contrib.slim.python.slim.X as x`` reads
# ``tf.contrib.slim.python``, and tf.contrib.slim is slim_attention.
_ATTRIBUTES_ON_REAL_MODULES = ("tensorflow.contrib.slim.python",)


class ContribNameError(AttributeError):
    """A ``tf.contrib`` name TF1 had that nothing here provides."""


def _missing_message(module_name, name, advice):
    return ("%s.%s was part of TF1's tf.contrib, which TensorFlow 2 removed; "
            "tf-slim has no replacement and slim_attention.install_contrib_alias() "
            "does not provide it. Use %s instead."
            % (module_name.replace("tensorflow.", "tf.", 1), name,
               advice[len(_contrib_names.MISSING):]))


def _is_missing(target):
    return target.startswith(_contrib_names.MISSING)


def resolve(target):
    """The object a table entry names: ``'module:attr.path'`` or ``'module'``.

    Args:
      target: A value of one of the :mod:`slim_attention._contrib_names`
        tables that is not a ``'missing: ...'`` entry.

    Returns:
      The module or attribute it names.

    Raises:
      ValueError: If ``target`` is a ``'missing: ...'`` entry.
    """
    if _is_missing(target):
        raise ValueError("target must name an object, got the missing entry %r" % target)
    module_name, _, attr_path = target.partition(":")
    # By module name: the attribute ``tf_slim.layers`` is shadowed by the
    # submodule ``tf_slim.layers.layers`` (tf_slim/__init__ star-imports it),
    # and ``tf_slim.ops`` by TensorFlow's ``ops`` module.
    obj = importlib.import_module(module_name)
    for attr in filter(None, attr_path.split(".")):
        obj = getattr(obj, attr)
    return obj


class _ContribModule(types.ModuleType):
    """A ``tf.contrib`` package made here: the names of its table, and for a
    name TF1 had that nothing provides, a :class:`ContribNameError` saying
    what to use instead."""

    def __init__(self, name, table=None):
        super().__init__(name, "TF1's %s as slim_attention provides it "
                               "(see slim_attention.contrib_alias)." % name)
        self.__path__ = []  # a package, so ``import <name>.x`` is tried
        self._contrib_table = table or {}

    def __getattr__(self, name):
        target = self.__dict__.get("_contrib_table", {}).get(name)
        if target is not None and _is_missing(target):
            raise ContribNameError(_missing_message(self.__name__, name, target))
        raise AttributeError("module %r has no attribute %r" % (self.__name__, name))

    def __dir__(self):
        names = set(super().__dir__())
        names.update(name for name, target in self._contrib_table.items()
                     if not _is_missing(target))
        return sorted(names)


class _ContribFinder:
    """Answers imports below the modules ``install_contrib_alias`` registered:
    a name TF1 had that nothing provides raises ``ModuleNotFoundError`` with
    what to use instead. Below an alias of a real module (``tf_slim.layers`` as
    ``tensorflow.contrib.layers.python.layers``) any other unknown name raises the usual
    error before the path finders could load a second copy of a tf-slim file
    under a ``tensorflow.contrib`` name. It never loads anything."""

    _slim_attention_contrib_finder = True

    def find_spec(self, fullname, path=None, target=None):
        parent, _, child = fullname.rpartition(".")
        module = sys.modules.get(parent)
        if module is None or not (isinstance(module, _ContribModule)
                                  or _REGISTERED.get(parent) is module):
            return None
        table = getattr(module, "_contrib_table", None) or {}
        entry = table.get(child)
        if entry is not None and _is_missing(entry):
            # ``name`` stays None: ``from tensorflow.contrib import rnn`` would
            # otherwise swallow this error and report a bare ImportError.
            raise ModuleNotFoundError(_missing_message(parent, child, entry))
        if isinstance(module, _ContribModule):
            return None  # no path to search: the usual error follows
        raise ModuleNotFoundError(
            "No module named %r: slim_attention's tf.contrib alias does not "
            "provide it" % fullname, name=fullname)


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


def _wanted_modules():
    """``{name: module or table}`` of every module to register, parents first:
    a module for an alias, a table (possibly None) for a package made here."""
    wanted = {}
    for alias, real in _contrib_names.MODULE_ALIASES.items():
        wanted[alias] = importlib.import_module(real)
        if alias not in _contrib_names.ALIAS_WITH_SUBMODULES:
            continue
        for source in (real, _contrib_names.SUBMODULE_FALLBACKS.get(alias)):
            for name in list(sys.modules) if source else ():
                if name.startswith(source + ".") and sys.modules[name] is not None:
                    wanted.setdefault(alias + name[len(source):], sys.modules[name])
    for name in list(_contrib_names.TABLES) + list(wanted):
        while name.startswith(_CONTRIB):
            wanted.setdefault(name, _contrib_names.TABLES.get(name))
            name = name.rpartition(".")[0]
    return {name: wanted[name] for name in sorted(wanted, key=lambda n: n.count("."))}


def _set_missing_attr(module, name, value):
    # ``hasattr`` is False for a ContribNameError too, so check the dict.
    if name not in vars(module):
        setattr(module, name, value)


def install_contrib_alias():
    """Makes TF1's ``tf.contrib`` names that tf-slim replaced importable again.

    Registers ``tensorflow.contrib`` and its ``slim``, ``framework``,
    ``layers``, ``losses``, ``metrics`` and ``training`` modules (with the TF1
    submodule paths listed in :mod:`slim_attention.contrib_alias`), fills them
    from :mod:`slim_attention._contrib_names`, sets ``contrib`` on
    ``tensorflow`` and on every ``tensorflow.compat.v1``, and adds an import
    hook that explains the ``tf.contrib`` modules nothing here provides.
    Nothing that already exists is replaced, so calling it again changes
    nothing.

    Returns:
      The ``tensorflow.contrib`` module.
    """
    importlib.import_module("slim_attention")
    registered = {}
    made = set()  # names of the packages made here (their attributes are ours)
    for name, value in _wanted_modules().items():
        if name not in sys.modules:
            if not isinstance(value, types.ModuleType):
                value = _ContribModule(name, value)
                made.add(name)
            sys.modules[name] = value
            _LOG.debug("slim_attention: registered %s", name)
        registered[name] = sys.modules[name]

    contrib = registered[_CONTRIB]
    for name, module in registered.items():
        parent, _, child = name.rpartition(".")
        # Attributes only on the packages made here and on tensorflow.contrib,
        # never on tf-slim's or slim_attention's own modules but for TF1's
        # ``tf.contrib.slim.python``.
        if parent in made or parent == _CONTRIB or name in _ATTRIBUTES_ON_REAL_MODULES:
            if child not in getattr(registered[parent], "_contrib_table", {}):
                _set_missing_attr(registered[parent], child, module)
    for name, table in _contrib_names.TABLES.items():
        module = registered[name]
        if name not in made and module is not contrib:
            continue
        for attr, target in table.items():
            if not _is_missing(target):
                _set_missing_attr(module, attr, resolve(target))

    for namespace in _tensorflow_namespaces():
        if not hasattr(namespace, "contrib"):
            setattr(namespace, "contrib", contrib)
            _LOG.debug("slim_attention: set %s.contrib", namespace.__name__)

    _REGISTERED.update(registered)
    if not any(getattr(finder, "_slim_attention_contrib_finder", False)
               for finder in sys.meta_path):
        sys.meta_path.insert(0, _ContribFinder())
    return contrib
