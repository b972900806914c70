"""vgg_patch.session_config: the bfloat16 option (oneDNN auto-mixed-precision)."""
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

from vgg_patch import Vgg19, session_config
from vgg_patch.session import cpu_has_bf16

tf1 = tf.compat.v1


def test_session_config_switches_only_the_bf16_rewrite():
    off, on = session_config(), session_config(bf16=True)
    assert (off.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16
            == rewriter_config_pb2.RewriterConfig.DEFAULT)
    assert (on.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16
            == rewriter_config_pb2.RewriterConfig.ON)
    expected = tf1.ConfigProto()  # nothing else is set
    expected.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
        rewriter_config_pb2.RewriterConfig.ON)
    assert on == expected and off == tf1.ConfigProto()


def test_session_config_refuses_non_bool():
    with pytest.raises(TypeError, match="bf16 must be True or False, got 'yes'"):
        session_config('yes')


def test_bf16_session_computes_close_to_float32(graph):
    tf1.set_random_seed(3)  # the same initial weights in both sessions
    images = tf1.placeholder(tf.float32, [2, 32, 32, 3])
    vgg = Vgg19(None, trainable=False, num_classes=5)
    vgg.build(images, train_mode=False)
    x = np.random.RandomState(0).rand(2, 32, 32, 3).astype(np.float32)
    outputs = []
    for bf16 in (False, True):
        with tf1.Session(graph=graph, config=session_config(bf16)) as sess:
            sess.run(tf1.global_variables_initializer())
            outputs.append(sess.run(vgg.fc8, {images: x}))
    f32, b16 = outputs
    assert f32.dtype == b16.dtype == np.float32  # float32 graph, bf16 inside
    rel = np.max(np.abs(b16 - f32)) / np.max(np.abs(f32))
    assert rel < 0.05
    if cpu_has_bf16():  # the rewrite really ran: bfloat16 rounding shows
        assert rel > 0
