"""One training run, from the resolved configuration to the exported weights.

:func:`train` scans the images (:mod:`~vgg_patch.training.dataset`), checks
the sizes against memory (:mod:`~vgg_patch.training.config`) and the run
folder (:mod:`~vgg_patch.training.run_dir`), builds the graph
(:mod:`~vgg_patch.training.graph`) and hands it to the
:class:`~vgg_patch.training.loop.Trainer`.
"""
import contextlib
import logging

from vgg_patch.cli.common import UsageError
from vgg_patch.session import session_config
from vgg_patch.training.config import check_model_fits
from vgg_patch.training.dataset import prepare_data
from vgg_patch.training.graph import build_graph
from vgg_patch.training.loop import Trainer
from vgg_patch.training.network import Vgg19Network
from vgg_patch.training.run_dir import check_or_write_run_files, remove_temp_files
from vgg_patch.training.signals import check_stop, stop_requested
from vgg_patch.training import workers as workers_lib

logger = logging.getLogger("vgg_patch.train")


def _plan(args, dataset, workers):
    """``(steps_per_epoch, total_steps)``, logged with the dataset's sizes."""
    n_train, n_val = len(dataset.train_paths), len(dataset.val_paths)
    steps_per_epoch = workers_lib.steps_per_epoch(n_train, args.batch_size, workers)
    total_steps = steps_per_epoch * args.epochs
    if args.max_steps is not None:
        total_steps = min(total_steps, args.max_steps)
    logger.info("%d training and %d validation images, %d classes%s; %d steps per "
                "epoch, %d steps in all", n_train, n_val, len(dataset.class_names),
                " (%d corrupt skipped)" % dataset.num_corrupt if dataset.num_corrupt
                else "", steps_per_epoch, total_steps)
    return steps_per_epoch, total_steps


def train(args, stop=None, make_network=None):
    """Runs (or resumes) training as configured; exports the best weights.

    Args:
      args: the resolved configuration (:func:`vgg_patch.training.config.resolve_config`).
      stop: a :class:`~vgg_patch.training.signals.StopRequest` (or anything
        with ``requested``); default: never.
      make_network: ``make_network(args, dataset)`` returns the network to
        train (see :mod:`vgg_patch.training.network`); default: VGG19+CBAM
        as ``args`` configure it.

    Returns:
      A dict with ``best_accuracy``, ``best_epoch``, ``global_step``,
      ``export_path``, ``train_dir``, ``num_corrupt`` and ``chief`` (False on
      a cluster's other workers, which write nothing: ``export_path`` None).

    Raises:
      UsageError: bad input (folders, weights, settings).
      TrainingFailed: the loss became NaN or infinite, or a checkpoint, summary
        or the export could not be written (temp files are removed).
      Interrupted: a stop was requested; a checkpoint was saved first if
        training had begun.
    """
    import tensorflow as tf
    workers = workers_lib.from_environment(args)
    try:
        dataset = prepare_data(args, lambda: stop_requested(stop),
                               None if workers is None or workers.is_chief
                               else workers_lib.scratch_dir())
    except (OSError, ValueError) as err:
        raise UsageError(str(err)) from None
    num_classes = len(dataset.class_names)
    if args.num_classes is not None and args.num_classes != num_classes:
        raise UsageError("--num-classes %d does not match the %d class folders of %r"
                         % (args.num_classes, num_classes, dataset.data_dir))
    if make_network is None:
        network = Vgg19Network(num_classes, workers_lib.start_weights(args.weights, workers),
                               args.dropout, args.winograd)
    else:
        network = make_network(args, dataset)
    check_model_fits(args, num_classes, network)
    if workers is None or workers.is_chief:  # the chief alone writes files
        check_or_write_run_files(args, dataset, num_classes, network.run_settings)
        remove_temp_files(args.train_dir)
    steps_per_epoch, total_steps = _plan(args, dataset, workers)
    check_stop(stop, "before building the graph")
    logger.info("building the graph")
    with tf.Graph().as_default() as tf_graph, \
            tf.device(workers.device if workers else None):
        try:
            graph = build_graph(args, num_classes, steps_per_epoch, total_steps, network,
                                workers)
        except (OSError, ValueError) as err:  # WeightsFileError is a ValueError
            raise UsageError(str(err).splitlines()[0] if str(err) else repr(err)) from None
        check_stop(stop, "while building the graph")
        tf_graph.finalize()
        config, target = session_config(args.bf16), ""
        if workers is not None:
            config, target = workers.start(config), workers.server.target
            workers.wait_for_peers(stop)
            check_stop(stop, "while waiting for the other workers")
        with tf.compat.v1.Session(target, graph=tf_graph, config=config) as sess:
            trainer = Trainer(sess, graph, args, dataset, steps_per_epoch, total_steps,
                              stop, workers)
            with _peer_failures(trainer, workers):
                if workers is not None:
                    _check_same_data(sess, graph, dataset)
                return dict(trainer.run(), chief=trainer.chief)


def _check_same_data(sess, graph, dataset):
    """Refuses to train when this worker's images differ from the others'."""
    mine = workers_lib.dataset_fingerprint(dataset)
    mean = sess.run(graph.data_check[1], {graph.data_check[0]: mine})
    if (mean != mine).any():
        raise UsageError("the workers see different images (counts, names or labels "
                         "differ): every worker needs the same --data-dir contents "
                         "(and --val-dir, --val-fraction, --seed)")


@contextlib.contextmanager
def _peer_failures(trainer, workers):
    """On a cluster: a failed collective -> the chief saves the step, then ``PeerLost``."""
    import tensorflow as tf
    if workers is None:
        yield
        return
    try:
        yield
    except (tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.UnavailableError, tf.errors.AbortedError):
        saved, starting = None, trainer.handles is None
        if workers.is_chief and not starting:
            trainer.sess.run(trainer.graph.restore_statistics)  # the failed step's
            saved = trainer.save_once("a peer was lost")
        raise workers.lost(trainer.step, saved, starting,
                           stop_requested(trainer.local_stop)) from None
