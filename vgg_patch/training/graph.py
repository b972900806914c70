"""The training graph: inputs, network, loss, train op, summaries and savers.

:func:`build_graph` builds everything a run needs in the current default graph
and returns it as one :class:`TrainGraph`. Graph mode (``tf.compat.v1``)
throughout; variable names, and so checkpoints, are those of tensorflow-vgg's
VGG19 plus ``global_step``, ``train_state/*`` and the optimizer's slots.
"""
import dataclasses
import typing

from vgg_patch import data as data_lib
from vgg_patch.training import optimization
from vgg_patch.training.network import Vgg19Network

Tensor = typing.Any  # a tf.Tensor, tf.Operation or tf.Variable


@dataclasses.dataclass
class TrainGraph:  # pylint: disable=too-many-instance-attributes
    """The tensors and ops of a training run (made by :func:`build_graph`).

    Loop state (saved in every checkpoint, assigned through ``state_feed`` /
    ``state_assign`` just before each save): ``global_step``, ``epoch``,
    ``epoch_position`` (images into the epoch), ``best_accuracy`` and
    ``best_epoch``.

    Inputs: three pipelines (``train_input``, ``val_input``,
    ``attention_input``) behind one feedable iterator selected by ``handle``,
    giving ``images`` and ``labels``; ``train_mode`` (default False) turns on
    dropout, batch statistics and their updates.

    The network (``network``, see :mod:`vgg_patch.training.network`) and its
    ``model_variables``; per batch ``predictions``, ``correct``,
    ``batch_count``, ``accuracy``, ``xent`` (cross-entropy), ``l2`` and
    ``loss``; ``learning_rate``; the ``trainable`` variables.

    The step: ``train_op`` (see :func:`vgg_patch.training.optimization.run_step`
    with ``copy_statistics`` and ``restore_statistics``); ``train_summary``,
    ``attention_fetch`` (images and attention maps for TensorBoard);
    ``saved_variables`` and ``weights_finite`` (checked before each save),
    ``saver`` (the run's checkpoints), ``best_saver`` (``best/``, the network
    only) and ``init``.

    On a cluster (:mod:`vgg_patch.training.workers`) the train pipeline
    gives this worker's share of each global batch, the gradients are
    all-reduced (weighted by each worker's image count, so the result is the
    global batch's mean gradient), batch norms use the global batch's
    statistics (:mod:`vgg_patch.training.sync_bn`), ``step_metrics`` are the
    global batch's and ``sync_from_chief`` gives every worker the chief's
    variables.
    """
    global_step: Tensor
    epoch: Tensor
    epoch_position: Tensor
    best_accuracy: Tensor
    best_epoch: Tensor
    state_feed: dict
    state_assign: Tensor
    train_input: data_lib.ImagePipeline
    val_input: data_lib.ImagePipeline
    attention_input: data_lib.ImagePipeline
    handle: Tensor
    images: Tensor
    labels: Tensor
    train_mode: Tensor
    network: typing.Any
    model_variables: list
    predictions: Tensor
    correct: Tensor
    batch_count: Tensor
    accuracy: Tensor
    xent: Tensor
    trainable: list
    l2: Tensor
    loss: Tensor
    learning_rate: Tensor
    train_op: Tensor
    copy_statistics: Tensor
    restore_statistics: Tensor
    train_summary: Tensor
    attention_fetch: list
    saved_variables: list
    weights_finite: Tensor
    saver: typing.Any
    best_saver: typing.Any
    init: Tensor
    # The step's [loss, accuracy, image count] over the global batch (on a
    # cluster: all workers'); on a cluster also the stop flag fed in and the
    # reduced one (> 0: some worker asked to stop) and the chief's broadcast.
    step_metrics: list = None
    stop_flag: Tensor = None
    sync_from_chief: Tensor = None
    # On a cluster: [fed local (correct, count, xent sum), their all-reduced sums];
    # [fed dataset fingerprint, its mean over the workers].
    val_sums: list = None
    data_check: list = None


def _loop_state():
    """``global_step`` and the ``train_state/*`` variables, with their feeds."""
    import tensorflow as tf
    state = {"global_step": tf.compat.v1.train.get_or_create_global_step()}
    with tf.compat.v1.variable_scope("train_state"):
        for key, name, value, dtype in (("epoch", "epoch", 0, tf.int64),
                                        ("epoch_position", "epoch_position", 0, tf.int64),
                                        ("best_accuracy", "best_val_accuracy", -1.0,
                                         tf.float32),
                                        ("best_epoch", "best_epoch", -1, tf.int64)):
            state[key] = tf.compat.v1.get_variable(
                name, initializer=tf.constant(value, dtype), trainable=False)
    # Loop state, assigned through feeds just before each save.
    loop_vars = [state[k] for k in ("epoch", "epoch_position", "best_accuracy",
                                    "best_epoch")]
    state["state_feed"] = {
        v: tf.compat.v1.placeholder(v.dtype.base_dtype, [], name=v.op.name.split("/")[-1])
        for v in loop_vars}
    state["state_assign"] = tf.group(*[v.assign(ph) for v, ph in state["state_feed"].items()])
    return state


def _inputs(args, workers):
    """The three pipelines behind one feedable iterator (train: this worker's share)."""
    import tensorflow as tf
    share = args.batch_size // (workers.size if workers else 1)
    fields = dict(
        train_input=data_lib.ImagePipeline(args.image_size, share, True,
                                           flip=args.flip, name="train_input"),
        val_input=data_lib.ImagePipeline(args.image_size, args.batch_size, False,
                                         name="val_input"),
        attention_input=data_lib.ImagePipeline(args.image_size,
                                               max(1, args.attention_images), False,
                                               name="attention_input"),
        handle=tf.compat.v1.placeholder(tf.string, [], name="input_handle"))
    ds = fields["train_input"].dataset
    iterator = tf.compat.v1.data.Iterator.from_string_handle(
        fields["handle"], tf.compat.v1.data.get_output_types(ds),
        tf.compat.v1.data.get_output_shapes(ds))
    fields["images"], fields["labels"] = iterator.get_next()
    fields["train_mode"] = tf.compat.v1.placeholder_with_default(False, [],
                                                                 name="train_mode")
    return fields


def _metrics(logits, labels):
    """Predictions, correct count, batch size, accuracy and cross-entropy."""
    import tensorflow as tf
    predictions = tf.argmax(logits, axis=-1, output_type=tf.int64)
    return dict(
        predictions=predictions,
        correct=tf.reduce_sum(tf.cast(tf.equal(predictions, labels), tf.int64)),
        batch_count=tf.shape(labels, out_type=tf.int64)[0],
        accuracy=tf.reduce_mean(tf.cast(tf.equal(predictions, labels), tf.float32)),
        xent=tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=labels, logits=logits)))


def _loss(xent, trainable, weight_decay):
    """``(l2, loss)``: L2 on the trained weights (rank >= 2) plus cross-entropy."""
    import tensorflow as tf
    decayed = [v for v in trainable if v.shape.ndims is not None and v.shape.ndims >= 2]
    if weight_decay > 0 and decayed:
        l2 = weight_decay * tf.add_n([tf.nn.l2_loss(v) for v in decayed])
    else:
        l2 = tf.constant(0.0)
    return l2, tf.identity(xent + l2, name="loss")


def _summaries_and_savers(args, fields):
    """Training summaries, the finiteness check before saves, savers and init."""
    import tensorflow as tf
    tf.compat.v1.summary.scalar("train/loss", fields["loss"])
    tf.compat.v1.summary.scalar("train/cross_entropy", fields["xent"])
    tf.compat.v1.summary.scalar("train/accuracy", fields["accuracy"])
    tf.compat.v1.summary.scalar("train/learning_rate", fields["learning_rate"])
    fields["train_summary"] = tf.compat.v1.summary.merge_all()
    # Checked before every save, on every variable saved (weights, moving
    # statistics, optimizer slots, loop state): a step can leave a finite loss
    # but infinite weights.
    saved = fields["saved_variables"] = tf.compat.v1.global_variables()
    fields["weights_finite"] = tf.reduce_all(tf.stack(
        [tf.reduce_all(tf.math.is_finite(v)) for v in saved
         if v.dtype.base_dtype.is_floating]))
    fields["saver"] = tf.compat.v1.train.Saver(saved, max_to_keep=args.keep_checkpoints,
                                               save_relative_paths=True)
    fields["best_saver"] = tf.compat.v1.train.Saver(fields["model_variables"],
                                                    max_to_keep=1, save_relative_paths=True)
    fields["init"] = tf.compat.v1.global_variables_initializer()


def _cluster_aggregate(fields, collectives):
    """The all-reduce of the gradients and the step's metrics (see ``TrainGraph``)."""
    import tensorflow as tf
    count = tf.cast(fields["batch_count"], tf.float32)
    fields["stop_flag"] = tf.compat.v1.placeholder_with_default(0.0, [], name="stop_flag")
    local = tf.stack([count, fields["xent"] * count, fields["accuracy"] * count,
                      fields["stop_flag"]])

    def aggregate(grads_and_vars):
        # Sum of count * mean gradient over the workers / sum of counts: the
        # global batch's mean gradient, for equal or unequal shares.
        grads = [None if g is None else tf.convert_to_tensor(g) * count
                 for g, _ in grads_and_vars]
        # One collective per gradient: each leaves as soon as backprop made it.
        reduced = collectives.all_reduce(grads + [local], mean=False, pack=False)
        total = reduced[-1]
        loss = tf.identity(total[1] / total[0] + fields["l2"], name="global_loss")
        fields["step_metrics"] = [loss, total[2] / total[0],
                                  tf.cast(total[0], tf.int64), total[3]]
        return ([(None if g is None else g / total[0], v)
                 for g, (_, v) in zip(reduced[:-1], grads_and_vars)], loss)
    return aggregate


def build_graph(args, num_classes, steps_per_epoch, total_steps, network=None,
                workers=None):
    """Builds the training graph in the current default graph.

    Args:
      args: the resolved configuration.
      num_classes: number of classes.
      steps_per_epoch: training steps of one epoch.
      total_steps: training steps of the whole run (for the schedule).
      network: the network to train (see :mod:`vgg_patch.training.network`);
        default: VGG19+CBAM configured by ``args``.
      workers: a :class:`vgg_patch.training.workers.Workers` on a cluster
        (build under its ``device``), else None.

    Returns:
      A :class:`TrainGraph`.

    Raises:
      ValueError, OSError: when the model cannot be built (bad weights file, an
        input size the weights do not allow, unknown trainable scope).
      TypeError: a bug, not bad input; left to show its traceback.
    """
    import tensorflow as tf
    if network is None:
        network = Vgg19Network(num_classes, args.weights, args.dropout, args.winograd)
    tf.compat.v1.set_random_seed(args.seed)
    fields = _loop_state()
    fields.update(_inputs(args, workers))
    collectives = aggregate = None
    if workers is None:
        output = network.build(fields["images"], fields["train_mode"])
    else:
        from vgg_patch.training.replicas import Collectives
        from vgg_patch.training.sync_bn import synchronized_batch_norm
        collectives = Collectives(workers.size, timeout=workers.peer_timeout)
        with synchronized_batch_norm(collectives):  # global batch statistics
            output = network.build(fields["images"], fields["train_mode"])
    fields.update(network=network, model_variables=network.model_variables())
    fields.update(_metrics(output.logits, fields["labels"]))
    trainable = fields["trainable"] = optimization.select_trainable(
        tf.compat.v1.trainable_variables(), args.trainable_scopes)
    fields["l2"], fields["loss"] = _loss(fields["xent"], trainable, args.weight_decay)
    fields["learning_rate"] = optimization.learning_rate_schedule(
        fields["global_step"], args.learning_rate, total_steps, args.lr_schedule,
        int(round(args.warmup_epochs * steps_per_epoch)))
    trainable_names = {v.op.name for v in tf.compat.v1.trainable_variables()}
    statistics = [v for v in fields["model_variables"] if v.op.name not in trainable_names]
    if workers is not None:
        aggregate = _cluster_aggregate(fields, collectives)
    fields["train_op"], fields["copy_statistics"], fields["restore_statistics"] = (
        optimization.guarded_train_op(
            optimization.make_optimizer(args, fields["learning_rate"]), fields["loss"],
            trainable, fields["global_step"], statistics,
            tuple(args.trainable_scopes) or ("",), aggregate))
    if workers is None:
        fields["step_metrics"] = [fields["loss"], fields["accuracy"], fields["batch_count"]]
    # Drawn in Python by vgg_patch.figure, like vgg19-cbam-predict's PNG.
    fields["attention_fetch"] = [fields["images"], output.attention_map]
    _summaries_and_savers(args, fields)
    if collectives is not None:
        fields["sync_from_chief"] = collectives.broadcast(fields["saved_variables"],
                                                          workers.is_chief)
        local = tf.compat.v1.placeholder(tf.float32, [3], name="validation_sums")
        fields["val_sums"] = [local, collectives.all_reduce([local], mean=False)[0]]
        local = tf.compat.v1.placeholder(tf.float32, [6], name="dataset_fingerprint")
        fields["data_check"] = [local, collectives.all_reduce([local])[0]]
    return TrainGraph(**fields)
