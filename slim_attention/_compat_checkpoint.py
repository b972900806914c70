"""Compatibility repair: tf-slim's ``assign_from_checkpoint`` with partitioned variables.

tf-slim functions whose own code fails on NumPy 2: no name is missing, so
each is wrapped once, and every module holding the original gets the
wrapper. Applied by :func:`slim_attention._compat.apply`.
"""
import functools
import importlib
import logging
import sys

_LOG = logging.getLogger("slim_attention._compat")  # the compat layer logs under one name


def assign_from_checkpoint_with_partitions(original):
    """tf-slim's ``assign_from_checkpoint``, with partitioned variables restorable again.

    tf-slim cuts a partition out of the checkpoint value with
    ``value[[slice, ...]]``, an IndexError since NumPy 1.23. Variables that are
    not partitions go to tf-slim's own function unchanged; each partition is
    fed its slice, cut with a tuple of slices, through a placeholder and an
    assign op named as tf-slim names them.
    """
    import tensorflow.compat.v1 as tf1

    @functools.wraps(original)
    def assign_from_checkpoint(model_path, var_list, ignore_missing_vars=False):
        if isinstance(var_list, (tuple, list)):
            grouped = {}
            for var in var_list:
                grouped.setdefault(original.__globals__["get_variable_full_name"](var),
                                   []).append(var)
        else:
            grouped = {name: list(value) if isinstance(value, (tuple, list)) else [value]
                       for name, value in var_list.items()}
        parts = {name: [v for v in group if v._save_slice_info]
                 for name, group in grouped.items()}
        if not any(parts.values()):
            return original(model_path, var_list, ignore_missing_vars)
        rest = {name: [v for v in group if not v._save_slice_info]
                for name, group in grouped.items()}
        assign_op, feed_dict = original(
            model_path, {name: group for name, group in rest.items() if group},
            ignore_missing_vars)
        reader = tf1.train.NewCheckpointReader(model_path)
        assign_ops = [assign_op]
        for name, group in parts.items():
            if not group:
                continue
            if not reader.has_tensor(name):
                if not ignore_missing_vars:
                    raise ValueError("Checkpoint is missing variable [%s]" % name)
                _LOG.warning("Checkpoint is missing variable [%s]", name)
                continue
            value = reader.get_tensor(name)
            for var in group:
                info = var._save_slice_info
                placeholder = tf1.placeholder(var.dtype.base_dtype, var.get_shape(),
                                              name="placeholder/" + var.op.name)
                assign_ops.append(var.assign(placeholder))
                cut = tuple(slice(start, start + size)
                            for start, size in zip(info.var_offset, info.var_shape))
                feed_dict[placeholder] = value[cut].reshape(info.var_shape)
        return tf1.group(*assign_ops), feed_dict

    return assign_from_checkpoint


# (module, function name, factory making the wrapper from the original).
REPAIRED_FUNCTIONS = (
    # assign_from_checkpoint: partitions cut with a list of slices (IndexError since NumPy 1.23).
    ("tf_slim.ops.variables", "assign_from_checkpoint",
     assign_from_checkpoint_with_partitions),
)


def repair_functions():
    """Wraps each function of ``REPAIRED_FUNCTIONS``, in every module holding it.

    Returns:
      The list of the repairs made (one entry per function wrapped).
    """
    made = []
    for module_name, name, factory in REPAIRED_FUNCTIONS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        original = getattr(module, name, None)
        if original is None or getattr(original, "_slim_attention_repair", False):
            continue
        repaired = factory(original)
        repaired._slim_attention_repair = True
        for holder in list(sys.modules.values()):
            namespace = getattr(holder, "__dict__", None)
            if (isinstance(namespace, dict) and namespace.get(name) is original
                    and getattr(holder, "__name__", "").split(".")[0]
                    in ("tf_slim", "slim_attention")):
                setattr(holder, name, repaired)
        made.append("%s.%s" % (module_name, name))
    return made
