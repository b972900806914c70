"""How a training step changes the weights, and how a bad step changes nothing.

The learning-rate schedule, the choice of trained variables
(``--trainable-scopes``), the optimizer, and the NaN guard: a step whose loss
or gradient is not finite is stopped in the graph before any weight,
optimizer slot or the global step changes, and :func:`run_step` puts the
moving statistics back.
"""
import math

# The message of the graph's finiteness check; run_step recognises it.
NAN_TAG = "vgg19-cbam-train: non-finite loss or gradient"


def learning_rate_schedule(global_step, base_lr, total_steps, schedule, warmup_steps):
    """The learning rate at ``global_step`` (a graph tensor).

    Linear warmup from ``base_lr / warmup_steps`` to ``base_lr`` over
    ``warmup_steps``, then ``cosine`` (half cosine to 0 at ``total_steps``),
    ``step`` (x0.1 at 50% and 75% of ``total_steps``) or ``constant``.

    Args:
      global_step: int64 scalar tensor.
      base_lr: peak learning rate.
      total_steps: steps of the whole run (> 0).
      schedule: ``'cosine'``, ``'step'`` or ``'constant'``.
      warmup_steps: steps of linear warmup (>= 0).

    Returns:
      A float32 scalar tensor.

    Raises:
      ValueError: for an unknown ``schedule``.
    """
    import tensorflow as tf
    if schedule not in ("cosine", "step", "constant"):
        raise ValueError("schedule must be 'cosine', 'step' or 'constant', got %r"
                         % (schedule,))
    step = tf.cast(global_step, tf.float32)
    total = float(max(1, total_steps))
    warm = float(max(0, warmup_steps))
    if schedule == "cosine":
        progress = tf.clip_by_value((step - warm) / max(1.0, total - warm), 0.0, 1.0)
        lr = 0.5 * base_lr * (1.0 + tf.cos(math.pi * progress))
    elif schedule == "step":
        lr = base_lr * tf.where(step < 0.5 * total, 1.0,
                                tf.where(step < 0.75 * total, 0.1, 0.01))
    else:
        lr = tf.constant(base_lr, tf.float32)
    if warm > 0:
        lr = tf.where(step < warm, base_lr * (step + 1.0) / warm, lr)
    return tf.identity(tf.cast(lr, tf.float32), name="learning_rate")


def select_trainable(variables, scopes):
    """The variables whose names start with one of ``scopes`` (all if none).

    Args:
      variables: trainable variables.
      scopes: list of scope-name prefixes (e.g. ``['cbam', 'fc']``).

    Returns:
      The selected variables, in their original order.

    Raises:
      ValueError: if a prefix matches no variable (the message lists the scopes).
    """
    if not scopes:
        return list(variables)
    chosen = []
    for scope in scopes:
        match = [v for v in variables if v.op.name.startswith(scope)]
        if not match:
            tops = sorted({v.op.name.split("/")[0] for v in variables})
            raise ValueError("--trainable-scopes: %r matches no trainable variable; "
                             "scopes are %s" % (scope, ", ".join(tops)))
        chosen.extend(m for m in match if m not in chosen)
    return [v for v in variables if v in chosen]


def make_optimizer(args, learning_rate):
    """``--optimizer``'s ``tf.compat.v1.train`` optimizer at ``learning_rate``."""
    import tensorflow as tf
    if args.optimizer == "adam":
        return tf.compat.v1.train.AdamOptimizer(learning_rate)
    return tf.compat.v1.train.MomentumOptimizer(learning_rate, args.momentum)


def _copy(sources, targets):
    """Assign ops copying each source's value into its target."""
    import tensorflow as tf
    # DeepCopy: a RefVariable's value shares its buffer, which the next
    # update would change in place in the copy too.
    return [t.assign(tf.raw_ops.DeepCopy(x=s.read_value()))
            for s, t in zip(sources, targets)]


def guarded_train_op(optimizer, loss, trainable, global_step, statistics, trained_scopes,
                     aggregate=None):
    """The train op: a step that fails the finiteness check changes nothing.

    Args:
      optimizer: the optimizer.
      loss: the scalar loss.
      trainable: the variables to train.
      global_step: incremented by each applied step.
      statistics: the network's variables that are not trained by gradients
        (batch-norm moving statistics), copied aside after each good step.
      trained_scopes: scope prefixes whose ``UPDATE_OPS`` run with the step
        (``('',)``: all).
      aggregate: on a cluster, ``aggregate(grads_and_vars)`` returns the
        all-reduced ``(grads_and_vars, loss)``, which the check then sees
        (so every worker fails the same step alike).

    Returns:
      ``(train_op, copy_statistics, restore_statistics)``: the step, the op
      that copies the statistics aside (run once after initialising or
      restoring) and the op that puts them back (:func:`run_step`).
    """
    import tensorflow as tf
    grads_and_vars = optimizer.compute_gradients(loss, var_list=trainable)
    if aggregate is not None:
        grads_and_vars, loss = aggregate(grads_and_vars)
    grads = [gv[0] for gv in grads_and_vars if gv[0] is not None]
    # A non-finite loss or gradient fails the step BEFORE any weight, optimizer
    # slot or the global step changes (every update depends on the check).
    finite = tf.debugging.check_numerics(
        loss + tf.linalg.global_norm(grads) * 0.0, NAN_TAG)
    with tf.control_dependencies([finite]):
        grads_and_vars = [(tf.identity(gr) if gr is not None else None, v)
                          for gr, v in grads_and_vars]
    # BatchNorm statistics (CBAM) update with the train op, but only for the
    # layers being trained: a frozen block keeps its statistics too.
    update_ops = [op for op in tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.UPDATE_OPS)
                  if op.name.startswith(tuple(trained_scopes))]
    with tf.control_dependencies(update_ops):
        apply_op = optimizer.apply_gradients(grads_and_vars, global_step=global_step)
    # The moving-statistics updates cannot wait for the check: the network
    # builds them next to its forward pass, inside its own conditionals. So
    # each step that passes ends by copying the statistics aside, and a step
    # that fails puts them back (run_step): a failing step changes nothing.
    with tf.compat.v1.variable_scope("nan_guard"):
        copies = [tf.compat.v1.Variable(tf.zeros(v.shape, v.dtype.base_dtype),
                                        trainable=False, use_resource=True,
                                        collections=[tf.compat.v1.GraphKeys.LOCAL_VARIABLES],
                                        name=v.op.name.replace("/", "_"))
                  for v in statistics]
    with tf.control_dependencies([apply_op]):
        train_op = tf.group(apply_op, *_copy(statistics, copies), name="train_op")
    return (train_op, tf.group(*_copy(statistics, copies)),
            tf.group(*_copy(copies, statistics)))


def run_step(sess, graph, fetches, feed_dict):
    """Runs one training step: ``fetches`` (holding ``graph.train_op``) with ``feed_dict``.

    A step whose loss or gradient is NaN or infinite changes no variable: the
    graph stops it before any weight, optimizer slot or the global step is
    updated, and the batch-norm moving statistics, which the network updates
    alongside its forward pass, are put back as the last good step left them.
    ``graph.copy_statistics`` must have run once after the variables were
    initialised or restored.

    Args:
      sess: the session of ``graph``.
      graph: the :class:`vgg_patch.training.graph.TrainGraph`.
      fetches: what to fetch; should hold ``graph.train_op``.
      feed_dict: the step's feeds.

    Returns:
      The fetched values, or None if the step was not finite (nothing applied).
    """
    import tensorflow as tf
    try:
        return sess.run(fetches, feed_dict)
    except tf.errors.InvalidArgumentError as err:
        if NAN_TAG not in str(err):
            raise
    sess.run(graph.restore_statistics)
    return None
