"""slim_attention._compat: the namespace, each repair, idempotence and additivity."""
import importlib
import sys

import numpy as np
import pytest
import tensorflow as tf

import slim_attention
from slim_attention import _compat
import tf_slim

tf1 = tf.compat.v1


@pytest.mark.parametrize("name", [
    "conv2d", "fully_connected", "batch_norm", "arg_scope", "add_arg_scope",
    "losses", "metrics", "learning", "evaluation", "get_variables_to_restore",
    "assign_from_checkpoint_fn", "assign_from_values_fn", "model_variable",
    "variable", "l2_regularizer", "xavier_initializer", "dataset",
    "tfexample_decoder", "dataset_data_provider", "summaries"])
def test_namespace_is_tf_slims_own_objects(name):
    assert getattr(slim_attention, name) is getattr(tf_slim, name)


def test_nets_and_data_are_tf_slims_modules():
    for net in ("alexnet", "overfeat"):
        assert getattr(slim_attention.nets, net) is importlib.import_module(
            "tf_slim.nets." + net)
    # vgg, resnet_v1, resnet_v2, resnet_utils, inception_v1/v2/v3 add attention_module
    # (tests/test_nets_*.py)
    # and hand every other name to tf-slim's module.
    for net, name in (("vgg", "vgg_arg_scope"), ("resnet_v1", "resnet_arg_scope"),
                      ("resnet_v2", "resnet_arg_scope"), ("resnet_utils", "Block"),
                      ("inception", "inception_v3_arg_scope"),
                      ("inception_v1", "inception_v1_arg_scope")):
        assert getattr(getattr(slim_attention.nets, net), name) is getattr(
            importlib.import_module("tf_slim.nets." + net), name)
    assert slim_attention.data is importlib.import_module("tf_slim.data")


@pytest.mark.parametrize("entry", _compat._MOVED_ATTRIBUTES,
                         ids=lambda e: "%s.%s" % (e[0].rsplit(".", 1)[1], e[1]))
def test_each_moved_name_is_the_object_that_now_lives_elsewhere(entry):
    old_module, old_name, new_module, new_name = entry
    assert (getattr(importlib.import_module(old_module), old_name)
            is getattr(importlib.import_module(new_module), new_name))


def test_legacy_tf_layers_alias_is_the_same_modules_not_a_copy():
    from tensorflow.python.layers import normalization as tf_normalization
    import tf_keras.src.legacy_tf_layers.normalization as moved

    for _, new_name, submodules in _compat._MOVED_PACKAGES:
        for child in submodules:
            assert (sys.modules["tf_keras.legacy_tf_layers." + child]
                    is sys.modules[new_name + "." + child])
    assert tf_normalization.BatchNormalization is moved.BatchNormalization


def test_numpy_aliases_and_numpy_names_are_kept():
    assert np.object is object and np.float is float and np.int is int
    assert np.complex is complex
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        assert np.product is np.prod  # our alias for the removed name
    else:
        assert np.product([2, 3]) == 6  # NumPy 1.x still has its own (deprecated)
    assert np.zeros(2, dtype=np.object).dtype == np.dtype("O")
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        assert np.bool is np.bool_  # NumPy 2's own np.bool, not replaced
    else:
        assert np.bool is bool  # the alias NumPy 1.24-1.26 removed, put back


def test_apply_is_idempotent():
    def snapshot():
        values = [getattr(importlib.import_module(old), name)
                  for old, name, _, _ in _compat._MOVED_ATTRIBUTES]
        values += [sys.modules.get(old) for old, _, _ in _compat._MOVED_PACKAGES]
        values += [np.object, np.float, np.int, np.complex, np.product,
                   tf1.layers.dense, tf1.nn.rnn_cell.BasicRNNCell]
        return values

    before = snapshot()
    assert _compat.apply() == []  # everything was repaired on import
    assert _compat.apply() == []
    after = snapshot()
    assert all(a is b for a, b in zip(before, after))


def test_apply_repairs_a_missing_name_and_never_replaces_an_existing_one(monkeypatch):
    from tensorflow.python.ops import array_ops, array_ops_stack, control_flow_ops

    monkeypatch.delattr(array_ops, "stack")
    sentinel = object()
    monkeypatch.setattr(control_flow_ops, "cond", sentinel)
    monkeypatch.delattr(np, "float")
    applied = _compat.apply()
    assert applied == ["tensorflow.python.ops.array_ops.stack", "numpy.float"]
    assert array_ops.stack is array_ops_stack.stack
    assert control_flow_ops.cond is sentinel  # an existing attribute is kept
    assert np.float is float


def test_constant_value_and_smart_cond_with_a_tensor(graph):
    """tf_slim.layers.utils, where a placeholder is_training used to fail."""
    from tf_slim.layers import utils

    flag = tf1.placeholder(tf.bool, [])
    assert utils.constant_value(flag) is None  # not known until run time
    assert utils.constant_value(tf.constant(True)).item() is True
    assert utils.constant_value(False) is False
    out = utils.smart_cond(flag, lambda: tf.constant(1.0), lambda: tf.constant(-1.0))
    with tf1.Session() as sess:
        assert sess.run(out, {flag: True}) == 1.0
        assert sess.run(out, {flag: False}) == -1.0
