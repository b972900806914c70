"""vgg_patch.training.network: the network seam and VGG19+CBAM's memory estimate."""
import numpy as np
import tensorflow as tf

from vgg_patch.training import network


def test_estimate_counts_vgg19_parameters_and_grows_with_size(graph):
    # VGG19 at 224 px with 1000 classes holds 143,667,240 parameters; CBAM adds
    # its MLP (512 -> 256 -> 512), the 7x7x2 spatial kernel and BN beta/gamma.
    cbam = 512 * 256 + 256 + 256 * 512 + 512 + 7 * 7 * 2 + 2
    params, _ = network.estimate_memory(224, 1, 1000, "momentum")
    assert params == 143667240 + cbam
    # Against the real graph: every variable the network builds at 32 px, less
    # the batch norm's moving statistics (not trained, no slots).
    from vgg_patch import Vgg19
    images = tf.compat.v1.placeholder(tf.float32, [1, 32, 32, 3])
    Vgg19(None, num_classes=3).build(images, tf.constant(False))
    built = sum(int(np.prod(v.shape.as_list())) for v in tf.compat.v1.trainable_variables())
    assert network.estimate_memory(32, 1, 3, "adam")[0] == built
    # fc6's input is 512 * ceil(s / 32) ** 2; bytes: weights, gradients, slots
    # and activations, so Adam and bigger batches need more.
    p1000 = network.estimate_memory(1000, 1, 3, "adam")[0]
    assert p1000 - params > 512 * (32 ** 2 - 7 ** 2) * 4096 - 1000 * 4097
    small, adam = (network.estimate_memory(64, b, 3, o)[1] for b, o in
                   ((1, "momentum"), (1, "adam")))
    assert adam - small == 4 * network.estimate_memory(64, 1, 3, "adam")[0]
    assert network.estimate_memory(64, 8, 3, "adam")[1] > adam
