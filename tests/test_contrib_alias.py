"""install_contrib_alias(): the table's contract -- each TF 1.15 tf.contrib name is the
object that replaced it, or an error saying what replaces it (TF1 programs run
end to end: test_contrib_alias_programs.py)."""
import importlib
import inspect
import re
import sys
import textwrap
import types

import pytest
import tensorflow as tf

import slim_attention
from slim_attention import _contrib_names
from slim_attention import contrib_alias

# The contrib modules with a table, by their attribute on tf.contrib.
TABLES = {name[len("tensorflow.contrib."):]: table
          for name, table in _contrib_names.TABLES.items()
          if name.count(".") == 2}
# tf-slim's copies of each TF1 contrib module: a name they define must be
# the very object the alias gives (a check independent of the table).
TF_SLIM_COPIES = {
    "framework": ["tf_slim.ops.arg_scope", "tf_slim.ops.variables",
                  "tf_slim.ops.framework_ops"],
    "layers": ["tf_slim.layers"],
    "losses": ["tf_slim.losses"],
    "metrics": ["tf_slim.metrics"],
    "training": ["tf_slim.training.training", "tf_slim.training.evaluation"],
}
MAPPED = [(module, name, target) for module, table in sorted(TABLES.items())
          for name, target in sorted(table.items())
          if not target.startswith(_contrib_names.MISSING)]
MISSING = [(module, name, target) for module, table in sorted(TABLES.items())
           for name, target in sorted(table.items())
           if target.startswith(_contrib_names.MISSING)]
MISSING_PACKAGES = sorted(name for name, target in _contrib_names.CONTRIB.items()
                          if target.startswith(_contrib_names.MISSING))


@pytest.fixture(scope="module")
def contrib():
    return slim_attention.install_contrib_alias()


def _ids(cases):
    return ["%s.%s" % case[:2] for case in cases]


def test_table_counts():
    """The TF 1.15 API, name by name: how much is mapped and how much raises."""
    counts = {module: (sum(1 for m, _, _ in MAPPED if m == module),
                       sum(1 for m, _, _ in MISSING if m == module))
              for module in TABLES}
    assert counts == {"framework": (43, 28), "layers": (68, 30), "losses": (15, 0),
                      "metrics": (57, 0), "training": (13, 15)}
    assert (len(_contrib_names.CONTRIB), len(MISSING_PACKAGES)) == (73, 67)


def test_advice_names_exist_in_this_tensorflow():
    """Every ``tf.X`` a missing name's message recommends is real here."""
    recommended = {token.rstrip(".")
                   for table in _contrib_names.TABLES.values()
                   for target in table.values() if target.startswith(_contrib_names.MISSING)
                   for token in re.findall(r"\btf\.[A-Za-z0-9_.]+", target)}
    assert len(recommended) > 40
    for token in sorted(recommended):
        obj = tf
        for part in token.split(".")[1:]:
            assert hasattr(obj, part), token
            obj = getattr(obj, part)


@pytest.mark.parametrize("module,name,target", MAPPED, ids=_ids(MAPPED))
def test_contrib_name_is_the_object_that_replaced_it(contrib, module, name, target):
    expected = contrib_alias.resolve(target)
    package = getattr(tf.contrib, module)
    assert getattr(package, name) is expected
    assert getattr(getattr(tf.compat.v1.contrib, module), name) is expected
    namespace = {}
    exec("from tensorflow.contrib.%s import %s as obj" % (module, name), namespace)
    assert namespace["obj"] is expected
    assert name in dir(package)
    # Only tf-slim, or TensorFlow's public API -- never tensorflow.python.
    assert target.split(":")[0].split(".")[0] in ("tf_slim", "tensorflow")
    if target.startswith("tensorflow:"):
        assert ":" in target and not target.startswith("tensorflow.")
    for copy_name in TF_SLIM_COPIES[module]:
        public = _public_names(copy_name)
        if name in public:
            assert public[name] is expected, copy_name


def _public_names(module_name):
    """``{name: object}``: a tf-slim module's ``__all__``, or without one, the
    names its ``__init__`` imports that are not modules."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name, value in vars(module).items()
                 if not name.startswith("_") and not isinstance(value, types.ModuleType)
                 and name not in ("absolute_import", "division", "print_function")]
    return {name: getattr(module, name) for name in names}


@pytest.mark.parametrize("module", ["framework", "metrics", "training"])
def test_every_public_name_of_tf_slims_copy_is_mapped(contrib, module):
    """tf-slim's copies of these three export nothing TF1 did not (layers
    and losses add a few names, reachable from tf_slim / slim_attention)."""
    mapped = {name for m, name, _ in MAPPED if m == module}
    for copy_name in TF_SLIM_COPIES[module]:
        extra = set(_public_names(copy_name)) - mapped
        assert extra <= {"arg_scope_func_key"}, copy_name


@pytest.mark.parametrize("module,name,target", MISSING, ids=_ids(MISSING))
def test_missing_contrib_name_says_what_replaces_it(contrib, module, name, target):
    package = getattr(tf.contrib, module)
    advice = target[len(_contrib_names.MISSING):]
    assert not hasattr(package, name)
    with pytest.raises(contrib_alias.ContribNameError) as info:
        getattr(package, name)
    assert isinstance(info.value, AttributeError)
    message = str(info.value)
    assert "tf.contrib.%s.%s" % (module, name) in message and advice in message
    with pytest.raises(ImportError) as info:
        exec("from tensorflow.contrib.%s import %s" % (module, name), {})
    assert advice in str(info.value)
    assert name not in dir(package)


@pytest.mark.parametrize("name", MISSING_PACKAGES)
def test_missing_contrib_package_says_what_replaces_it(contrib, name):
    advice = _contrib_names.CONTRIB[name][len(_contrib_names.MISSING):]
    assert not hasattr(tf.contrib, name)
    with pytest.raises(contrib_alias.ContribNameError, match="tf.contrib.%s " % name):
        getattr(tf.contrib, name)
    for statement in ("import tensorflow.contrib.%s" % name,
                      "from tensorflow.contrib import %s" % name,
                      "import tensorflow.contrib.%s.submodule" % name):
        with pytest.raises(ModuleNotFoundError) as info:
            exec(statement, {})
        assert "tf.contrib.%s was part of TF1's tf.contrib" % name in str(info.value)
        assert advice in str(info.value)


@pytest.mark.parametrize("module", ["framework", "layers", "losses", "metrics",
                                    "training", "framework.python.ops"])
def test_name_tf1_never_had_is_a_plain_attribute_error(contrib, module):
    package = sys.modules["tensorflow.contrib." + module]
    with pytest.raises(AttributeError) as info:
        package.no_such_name  # noqa: B018
    assert type(info.value) is AttributeError
    assert "'tensorflow.contrib.%s' has no attribute 'no_such_name'" % module in str(info.value)
    with pytest.raises(ImportError, match="cannot import name 'no_such_name'"):
        exec("from tensorflow.contrib.%s import no_such_name" % module, {})
    with pytest.raises(ModuleNotFoundError, match="No module named 'tensorflow.contrib.%s"
                       % module):
        exec("import tensorflow.contrib.%s.no_such_name" % module, {})


def test_import_forms(contrib):
    """The ways TF1 code reached these names, research/slim's included."""
    import tf_slim

    namespace = {}
    exec(textwrap.dedent("""
        import tensorflow.contrib.slim as slim
        import tensorflow.contrib.framework as contrib_framework
        import tensorflow.contrib.slim.nets.resnet_v1 as dotted_resnet_v1
        import tensorflow.contrib.layers.python.layers.layers as layers_lib
        from tensorflow.contrib import slim as from_slim, layers, framework
        from tensorflow.contrib.framework import arg_scope, add_arg_scope
        from tensorflow.contrib.slim.nets import resnet_v1, vgg, inception
        from tensorflow.contrib.slim.nets import resnet_utils as nets_resnet_utils
        from tensorflow.contrib.slim.nets import alexnet
        import tensorflow.contrib.slim.nets.alexnet as dotted_alexnet
        from tensorflow.contrib.framework.python.ops import arg_scope as ops_arg_scope
        from tensorflow.contrib.framework.python.ops import add_arg_scope as ops_add
        from tensorflow.contrib.framework.python.ops import variables as variables_lib
        from tensorflow.contrib.layers.python.layers import initializers, regularizers
        from tensorflow.contrib.layers.python.layers import utils, optimize_loss
        from tensorflow.contrib.slim.python.slim.nets import resnet_utils
        # The transfer-learning examples of a popular TF1 book, and research code:
        import tensorflow.contrib.slim.python.slim.nets.inception_v3 as dotted_v3
        import tensorflow.contrib.slim.python.slim.learning as dotted_learning
        from tensorflow.contrib.slim.python.slim import learning, nets as python_nets
        from tensorflow.contrib.slim.python.slim.learning import train_step
        from tensorflow.contrib.slim.python.slim.data import parallel_reader
        from tensorflow.contrib.losses.python.losses import softmax_cross_entropy
        from tensorflow.contrib.losses import metric_learning
        from tensorflow.contrib.metrics.python.ops import metric_ops
        from tensorflow.contrib.training.python.training import training, evaluation
    """), namespace)
    ns = types.SimpleNamespace(**namespace)
    assert ns.slim is ns.from_slim is slim_attention
    assert ns.contrib_framework is ns.framework is tf.contrib.framework
    assert ns.layers is tf.contrib.layers
    assert ns.arg_scope is ns.ops_arg_scope is tf_slim.arg_scope
    assert ns.add_arg_scope is ns.ops_add is tf_slim.add_arg_scope
    # Both forms give slim_attention.nets' modules: tf-slim's networks plus
    # attention_module (``import a.b.c as x`` walks attributes from
    # tf.contrib.slim, ``from a.b import c`` reads the registered module).
    assert ns.resnet_v1 is ns.dotted_resnet_v1 is slim_attention.nets.resnet_v1
    assert ns.vgg is slim_attention.nets.vgg
    assert ns.nets_resnet_utils is slim_attention.nets.resnet_utils
    assert "attention_module" in inspect.signature(ns.resnet_v1.resnet_v1_50).parameters
    assert ns.inception is slim_attention.nets.inception
    # Old code runs unchanged: the names a module does not define are tf-slim's,
    # and the networks slim_attention.nets does not wrap are tf-slim's modules.
    assert ns.resnet_v1.resnet_arg_scope is tf_slim.nets.resnet_v1.resnet_arg_scope
    assert ns.nets_resnet_utils.Block is tf_slim.nets.resnet_utils.Block
    assert ns.alexnet is ns.dotted_alexnet is tf_slim.nets.alexnet
    for alias, real in [("variables_lib", "tf_slim.ops.variables"),
                        ("layers_lib", "tf_slim.layers.layers"),
                        ("initializers", "tf_slim.layers.initializers"),
                        ("regularizers", "tf_slim.layers.regularizers"),
                        ("utils", "tf_slim.layers.utils"),
                        ("parallel_reader", "tf_slim.data.parallel_reader"),
                        ("metric_learning", "tf_slim.losses.metric_learning"),
                        ("metric_ops", "tf_slim.metrics.metric_ops"),
                        ("training", "tf_slim.training.training"),
                        ("evaluation", "tf_slim.training.evaluation")]:
        assert getattr(ns, alias) is sys.modules[real], alias
    assert ns.resnet_utils is slim_attention.nets.resnet_utils
    # ``import a.b.c as x`` walks attributes from tf.contrib.slim (slim_attention):
    # the same modules as the ``from`` form.
    assert ns.dotted_v3 is slim_attention.nets.inception_v3
    assert "attention_module" in inspect.signature(ns.dotted_v3.inception_v3).parameters
    assert ns.dotted_learning is ns.learning is tf_slim.learning
    assert ns.python_nets is slim_attention.nets
    assert ns.optimize_loss is tf_slim.optimize_loss
    assert ns.train_step is tf_slim.learning.train_step
    assert ns.softmax_cross_entropy is tf_slim.losses.softmax_cross_entropy
    # An import below a tf-slim module never loads a second copy of a file.
    with pytest.raises(ModuleNotFoundError, match="does not provide it"):
        exec("import tensorflow.contrib.slim.nets.nasnet", {})
    assert not [name for name, module in sys.modules.items()
                if name.startswith("tensorflow.contrib") and module is not None
                and getattr(module, "__file__", None)
                and not module.__name__.startswith(("tf_slim", "slim_attention"))]


WRAPPED_NETS = ["resnet_utils", "resnet_v1", "resnet_v2", "vgg", "inception",
                "inception_v1", "inception_v2", "inception_v3"]


def test_both_nets_spellings_give_the_same_modules(contrib):
    """``tf.contrib.slim.nets`` and TF1's own path to the same networks,
    ``tensorflow.contrib.slim.python.slim.nets``: slim_attention.nets' modules
    for the networks it wraps, tf-slim's for the others."""
    import tf_slim

    got = {}
    for path in ("tensorflow.contrib.slim.nets", "tensorflow.contrib.slim.python.slim.nets"):
        namespace = {}
        exec("from %s import %s, alexnet, overfeat" % (path, ", ".join(WRAPPED_NETS)),
             namespace)
        namespace["package"] = importlib.import_module(path)
        got[path] = namespace
    for name in WRAPPED_NETS:
        expected = getattr(slim_attention.nets, name)
        assert expected.__name__ == "slim_attention.nets." + name
        for path, namespace in got.items():
            assert namespace[name] is expected, (path, name)
            assert sys.modules[path + "." + name] is expected, (path, name)
    for path, namespace in got.items():
        assert namespace["package"] is slim_attention.nets
        assert namespace["alexnet"] is tf_slim.nets.alexnet, path
        assert namespace["overfeat"] is tf_slim.nets.overfeat, path
    assert "attention_module" in inspect.signature(
        got["tensorflow.contrib.slim.python.slim.nets"]["resnet_v2"].resnet_v2_50).parameters


def _alias_state():
    contrib_modules = {name: module for name, module in sys.modules.items()
                       if name.startswith("tensorflow.contrib")}
    attributes = {name: dict(vars(module)) for name, module in contrib_modules.items()
                  if isinstance(module, contrib_alias._ContribModule)}
    namespaces = {ns.__name__: ns.contrib for ns in contrib_alias._tensorflow_namespaces()}
    return contrib_modules, attributes, namespaces, list(sys.meta_path)


def test_install_is_idempotent_and_aliases_tf_slim_objects(contrib):
    import tf_slim

    before = _alias_state()
    assert slim_attention.install_contrib_alias() is contrib
    assert _alias_state() == before
    assert sum(getattr(f, "_slim_attention_contrib_finder", False)
               for f in sys.meta_path) == 1
    assert tf.contrib is contrib and tf.compat.v1.contrib is contrib
    assert {"tensorflow.contrib", "tensorflow.contrib.slim", "tensorflow.contrib.slim.nets",
            "tensorflow.contrib.framework", "tensorflow.contrib.layers",
            "tensorflow.contrib.losses", "tensorflow.contrib.metrics",
            "tensorflow.contrib.training"} <= set(before[0])
    assert contrib.slim is slim_attention
    assert contrib.slim.conv2d is tf_slim.conv2d
    assert contrib.layers.xavier_initializer is tf_slim.xavier_initializer
    assert contrib.layers.l2_regularizer is tf_slim.l2_regularizer
    assert (contrib.layers.variance_scaling_initializer
            is tf_slim.variance_scaling_initializer)
    assert contrib.framework.arg_scope is tf_slim.arg_scope
    assert contrib.training.train is tf_slim.training.train
    assert contrib.losses.softmax_cross_entropy is tf_slim.losses.softmax_cross_entropy
    assert contrib.metrics.streaming_accuracy is tf_slim.metrics.streaming_accuracy
    # Nothing was added to tf-slim's modules, and to slim_attention only TF1's
    # tf.contrib.slim.python (a package made here: the dotted import walks it).
    assert not hasattr(tf_slim, "python") and not hasattr(tf_slim.nets, "python")
    assert slim_attention.python is sys.modules["tensorflow.contrib.slim.python"]
    assert isinstance(slim_attention.python, contrib_alias._ContribModule)
    assert not hasattr(slim_attention.nets, "python")


def test_install_never_replaces_an_existing_contrib(monkeypatch):
    """A pre-existing tensorflow.contrib (module and attribute) and a
    pre-existing contrib submodule are kept; only the missing names are added."""
    existing = types.ModuleType("tensorflow.contrib")
    existing.layers = sentinel_layers = types.ModuleType("user_layers")
    user_framework = types.ModuleType("tensorflow.contrib.framework")
    user_framework.arg_scope = sentinel_arg_scope = object()
    monkeypatch.setitem(sys.modules, "tensorflow.contrib", existing)
    monkeypatch.setitem(sys.modules, "tensorflow.contrib.framework", user_framework)
    for name in [name for name in sys.modules
                 if name.startswith("tensorflow.contrib.") and name != "tensorflow.contrib.framework"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(tf, "contrib", existing, raising=False)
    monkeypatch.setattr(tf.compat.v1, "contrib", existing, raising=False)

    assert slim_attention.install_contrib_alias() is existing
    assert tf.contrib is existing and tf.compat.v1.contrib is existing
    assert existing.layers is sentinel_layers  # kept, not replaced
    assert existing.slim is slim_attention  # the missing name was added
    assert existing.framework is user_framework
    assert user_framework.arg_scope is sentinel_arg_scope
    assert not hasattr(user_framework, "add_arg_scope")  # a user's module is not filled
    assert sys.modules["tensorflow.contrib.framework"] is user_framework
    import tf_slim
    assert existing.training.create_train_op is tf_slim.training.create_train_op
