"""What ``slim-attention-train`` exports, and reading it back.

::

    TRAIN_DIR/export/slim-attention.ckpt.index, .data-*   the model variables
    TRAIN_DIR/export/slim-attention.json                  what to build

The checkpoint is a plain ``tf.compat.v1.train.Saver`` (V2) checkpoint of the
network's model variables only (weights, attention blocks, batch-norm moving
statistics) under tf-slim's names, e.g. ``resnet_v1_50/block1/unit_1/
bottleneck_v1/CBAM/...``: no optimizer slots, no loop state. It is what a
tf-slim user restores with ``slim.assign_from_checkpoint_fn(path,
slim.get_model_variables())`` after building the same call, what
``slim-attention-predict`` reads, and what ``--checkpoint`` of a further run
starts from (base and classifier; attention always starts fresh there).

The JSON names that call::

    {"format": "slim-attention-export", "model": "resnet_v1_50",
     "attention": "cbam", "attention_params": {}, "num_classes": 10,
     "image_size": 64, "preprocessing": "mean", "classes": ["0", ...],
     "checkpoint": "slim-attention.ckpt"}

Both files are written to temp names and renamed (TensorFlow's Saver does so
for its files); the JSON is written last, so a JSON names a complete checkpoint.
"""
import json
import os

from vgg_patch.training import run_dir

FORMAT = "slim-attention-export"
EXPORT_DIR = os.path.dirname(run_dir.SLIM_EXPORT_CHECKPOINT)
# Named in run_dir, which removes the temp files their writers leave.
EXPORT_CHECKPOINT = run_dir.SLIM_EXPORT_CHECKPOINT
EXPORT_JSON = run_dir.SLIM_EXPORT_JSON

_REQUIRED = ("model", "attention", "num_classes", "image_size", "classes",
             "checkpoint")


def describe(network):
    """The export's JSON content for a :class:`~vgg_patch.training.slim_network.SlimNetwork`."""
    return {"format": FORMAT, "model": network.model, "attention": network.attention,
            "attention_params": network.attention_params,
            "num_classes": network.num_classes, "image_size": network.image_size,
            "preprocessing": network.spec.preprocessing,
            "classes": network.class_names}


def make_saver(variables):
    """The export's Saver of ``variables`` (made while the graph can still grow)."""
    import tensorflow as tf
    return tf.compat.v1.train.Saver(variables, save_relative_paths=True)


def save(sess, saver, path, description):
    """Writes the checkpoint of ``saver``'s variables at ``path`` and the JSON beside it.

    Args:
      sess: the session holding the values.
      saver: the :func:`make_saver` of the model variables.
      path: the checkpoint prefix (``.../export/slim-attention.ckpt``).
      description: the JSON content (see :func:`describe`); ``checkpoint`` is
        set to ``path``'s base name.

    Returns:
      ``path``.
    """
    saver.save(sess, path, write_meta_graph=False, write_state=False)
    description = dict(description, checkpoint=os.path.basename(path))
    run_dir.atomic_write(os.path.splitext(path)[0] + ".json",
                         json.dumps(description, indent=2) + "\n")
    return path


def read(train_dir):
    """The export of the run in ``train_dir``: its JSON, with ``checkpoint`` made a path.

    Raises:
      ValueError: no export there, or a JSON that is not one (one line).
    """
    path = os.path.join(train_dir, EXPORT_JSON)
    if not os.path.isfile(path):
        raise ValueError("%r has no slim-attention-train export (%s); finish a training "
                         "run there first" % (train_dir, EXPORT_JSON))
    try:
        with open(path, encoding="utf-8") as f:
            found = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError("%s cannot be read: %s" % (path, err)) from None
    if not isinstance(found, dict) or found.get("format") != FORMAT or any(
            key not in found for key in _REQUIRED):
        raise ValueError("%s is not a slim-attention-train export (needs format %r and "
                         "%s)" % (path, FORMAT, ", ".join(_REQUIRED)))
    found["checkpoint"] = os.path.join(os.path.dirname(path), found["checkpoint"])
    return found
