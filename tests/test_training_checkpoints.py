"""vgg_patch.training.checkpoints: what a failed write says."""
import errno
import os

import tensorflow as tf

from vgg_patch.training import checkpoints


def test_write_failures_name_the_file_and_the_os_reason():
    tf_error = tf.errors.ResourceExhaustedError(
        None, None, "Graph execution error:\n\nDetected at node 'save/SaveV2'\n"
        "Node: 'save/SaveV2'\n/r/model.ckpt-3.data-00000-of-00001.tempstate75266; No "
        "space left on device\n\t [[{{node save/SaveV2}}]]\nHint: ...")
    err = checkpoints.write_failed("the checkpoint of step 3:", "/r/model.ckpt-3", tf_error,
                                   "/r/model.ckpt-2")
    assert str(err) == ("could not write the checkpoint of step 3: "
                        "/r/model.ckpt-3.data-00000-of-00001: No space left on device; "
                        "the previous checkpoint /r/model.ckpt-2 is intact")
    os_error = OSError(errno.EIO, os.strerror(errno.EIO))
    err = checkpoints.write_failed("the export", "/r/export/vgg19-cbam.npy", os_error, None)
    assert str(err) == ("could not write the export /r/export/vgg19-cbam.npy: "
                        "Input/output error; the previous checkpoint (none) is intact")
    vague = tf.errors.UnknownError(None, None, "Graph execution error:\n\nsomething "
                                   "failed: No space left on device")
    assert "No space left on device" in str(checkpoints.write_failed("x", "p", vague, None))
