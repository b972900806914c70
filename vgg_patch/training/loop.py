"""The training loop: :class:`Trainer` runs a built graph in a session.

Restore the newest checkpoint (or initialise), then epochs of training steps,
each epoch ending with validation, a ``best/`` checkpoint when the accuracy
improved and a checkpoint of the loop state; finally the best weights are
exported. A stop request (Ctrl-C, SIGTERM) is honoured between steps and
phases, saving first if training has begun.
"""
import contextlib
import logging
import math
import os
import time

from vgg_patch import data as data_lib
from vgg_patch import figure as figure_lib
from vgg_patch.cli.common import Interrupted, TrainingFailed
from vgg_patch.progress import ProgressBar
from vgg_patch.training import checkpoints
from vgg_patch.training.optimization import run_step
from vgg_patch.training.run_dir import BEST_DIR, CKPT_NAME, remove_temp_files
from vgg_patch.training.signals import check_stop, stop_requested
from vgg_patch.training.summaries import attention_summary, validation_summary
from vgg_patch.training.workers import AgreedStop

logger = logging.getLogger("vgg_patch.train")

_SUMMARIES = "the TensorBoard summaries in"


class Trainer:  # pylint: disable=too-many-instance-attributes
    """Runs a built :class:`~vgg_patch.training.graph.TrainGraph` in a session.

    Holds the loop state (``step``, ``epoch``, ``position`` in the epoch,
    ``best_acc``, ``best_epoch``), which every checkpoint saves, and the
    checkpoint to name when something fails (``last_saved``, else
    ``restored``).

    Args:
      sess: the session of the graph.
      graph: the ``TrainGraph``.
      args: the resolved configuration.
      dataset: the run's :class:`~vgg_patch.training.dataset.Dataset`.
      steps_per_epoch: training steps of one epoch.
      total_steps: training steps of the whole run.
      stop: a :class:`~vgg_patch.training.signals.StopRequest` or None.
      workers: on a cluster, the :class:`~vgg_patch.training.workers.Workers`:
        only the chief restores and writes; the others get the chief's
        variables; each trains on its share; a stop is agreed in a step.
    """

    def __init__(self, sess, graph, args, dataset, steps_per_epoch, total_steps, stop,
                 workers=None):
        self.sess, self.graph, self.args, self.dataset = sess, graph, args, dataset
        self.steps_per_epoch, self.total_steps, self.stop = (steps_per_epoch, total_steps,
                                                             stop)
        self.ckpt_prefix = os.path.join(args.train_dir, CKPT_NAME)
        self.best_dir = os.path.join(args.train_dir, BEST_DIR)
        self.restored = self.last_saved = None
        self.step = self.epoch = self.position = self.best_epoch = 0
        self.best_acc = 0.0
        self.writer = self.handles = None
        self.workers, self.chief = workers, workers is None or workers.is_chief
        self.local_stop = stop
        if workers is not None:  # the loop honours only a stop all workers agreed on
            self.stop = AgreedStop()

    # -- set-up ---------------------------------------------------------------

    def restore_or_initialize(self):
        """Restores the newest checkpoint (or initialises) and reads the loop state."""
        import tensorflow as tf
        sess, graph = self.sess, self.graph
        if self.chief:
            self.restored = checkpoints.restore_latest(
                sess, graph.saver, self.args.train_dir,
                sess.graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES))
        check_stop(self.stop, "while restoring the checkpoint")
        if self.restored is None:
            sess.run(graph.init)
            logger.info("starting from %s", "the chief's variables" if not self.chief
                        else "weights %s" % self.args.weights if self.args.weights
                        else "scratch (random initialisation)")
        if graph.sync_from_chief is not None:
            sess.run(graph.sync_from_chief)  # every worker: the chief's values
        sess.run(graph.copy_statistics)
        check_stop(self.stop, "while initialising")
        step, epoch, position, best_acc, best_epoch = sess.run(
            [graph.global_step, graph.epoch, graph.epoch_position, graph.best_accuracy,
             graph.best_epoch])
        self.step, self.epoch, self.position = int(step), int(epoch), int(position)
        self.best_acc, self.best_epoch = float(best_acc), int(best_epoch)
        if self.restored is not None:
            logger.info("resuming from %s: step %d, epoch %d, %d images into the epoch",
                        self.restored, self.step, self.epoch + 1, self.position)

    def open_writer(self):
        """Opens the summary writer and the pipelines' iterator handles."""
        import tensorflow as tf
        graph = self.graph
        if self.chief:  # the chief alone writes files
            with self.writing(_SUMMARIES, self.args.train_dir):
                self.writer = tf.compat.v1.summary.FileWriter(
                    self.args.train_dir,
                    graph=self.sess.graph if self.restored is None else None)
                # Tell TensorBoard to drop events after this step left by a killed run.
                self.writer.add_session_log(
                    tf.compat.v1.SessionLog(status=tf.compat.v1.SessionLog.START),
                    global_step=self.step)
        self.handles = dict(zip(("train", "val", "attention"), self.sess.run(
            [p.iterator.string_handle() for p in (graph.train_input, graph.val_input,
                                                  graph.attention_input)])))

    # -- writing --------------------------------------------------------------

    @property
    def last_good(self):
        """The newest checkpoint known to be complete, or None."""
        return self.last_saved or self.restored

    @contextlib.contextmanager
    def writing(self, what, path, errors=None):
        """Turns a failed write into ``TrainingFailed`` after removing temp files."""
        import tensorflow as tf
        try:
            yield
        except errors or (tf.errors.OpError, OSError) as err:  # disk full, I/O error
            remove_temp_files(self.args.train_dir)
            raise checkpoints.write_failed(what, path, err, self.last_good) from None

    def add_summary(self, summary):
        """Writes ``summary`` at the current step (the chief; others write nothing)."""
        if self.writer is None:
            return
        with self.writing(_SUMMARIES, self.args.train_dir):
            self.writer.add_summary(summary, self.step)

    def close_writer(self):
        if self.writer is None:
            return
        with self.writing(_SUMMARIES, self.args.train_dir):
            self.writer.close()

    def save(self, reason):
        """Saves a checkpoint of the weights and the loop state; returns its prefix.

        Raises:
          TrainingFailed: a saved variable is NaN or infinite (nothing saved).
        """
        sess, graph = self.sess, self.graph
        if not self.chief:
            return None
        if not sess.run(graph.weights_finite):
            raise TrainingFailed(
                "the weights became NaN or infinite at step %d (learning rate %.3g too "
                "high?); not saved; last good checkpoint: %s"
                % (self.step, sess.run(graph.learning_rate), self.last_good or "none"))
        feed = graph.state_feed
        sess.run(graph.state_assign, {feed[graph.epoch]: self.epoch,
                                      feed[graph.epoch_position]: self.position,
                                      feed[graph.best_accuracy]: self.best_acc,
                                      feed[graph.best_epoch]: self.best_epoch})
        with self.writing("the checkpoint of step %d:" % self.step,
                          "%s-%d" % (self.ckpt_prefix, self.step)):
            path = graph.saver.save(sess, self.ckpt_prefix, global_step=self.step)
        with self.writing(_SUMMARIES, self.args.train_dir):
            self.writer.flush()
        self.last_saved = path
        logger.debug("saved %s (%s)", path, reason)
        return path

    def _saved_this_step(self):
        return (self.last_saved or "").endswith("-%d" % self.step)

    def save_once(self, reason):
        """The current step's checkpoint: the one saved already, else a new one."""
        return self.last_saved if self._saved_this_step() else self.save(reason)

    # -- validation -----------------------------------------------------------

    def evaluate(self):
        """``(accuracy, cross_entropy)`` over the validation images (on a cluster:
        each worker its share, the sums all-reduced)."""
        import tensorflow as tf
        graph, val_paths, labels = self.graph, self.dataset.val_paths, self.dataset.val_labels
        if self.workers is not None:
            val_paths, labels = self.workers.split(val_paths), self.workers.split(labels)
        graph.val_input.initialize(self.sess, val_paths, labels)
        correct = count = 0
        xent_sum = 0.0
        while True:
            if stop_requested(self.stop):
                raise Interrupted()
            try:
                c, n, xent = self.sess.run(
                    [graph.correct, graph.batch_count, graph.xent],
                    {graph.handle: self.handles["val"]})
            except tf.errors.OutOfRangeError:
                break
            correct += int(c)
            count += int(n)
            xent_sum += float(xent) * int(n)
        if graph.val_sums is not None:
            correct, count, xent_sum = self.sess.run(
                graph.val_sums[1], {graph.val_sums[0]: [correct, count, xent_sum]})
        if count < len(self.dataset.val_paths):
            logger.warning("%d validation image(s) failed to decode in TensorFlow and "
                           "were skipped", len(self.dataset.val_paths) - count)
        return correct / float(max(1, count)), xent_sum / float(max(1, count))

    def summarize_attention(self):
        """Draws the first validation images' attention maps into TensorBoard."""
        import tensorflow as tf
        if self.args.attention_images <= 0 or not self.chief:
            return
        graph, val_paths = self.graph, self.dataset.val_paths
        k = min(self.args.attention_images, len(val_paths))
        graph.attention_input.initialize(self.sess, val_paths[:k],
                                         self.dataset.val_labels[:k])
        try:
            images, maps = self.sess.run(graph.attention_fetch,
                                         {graph.handle: self.handles["attention"]})
        except tf.errors.OutOfRangeError:  # every one of them failed to decode
            logger.warning("no attention-map summary: the first %d validation images "
                           "failed to decode", k)
            return
        titles = None
        if len(images) == k:  # else some failed to decode: names unknown
            titles = [os.path.basename(p) for p in val_paths[:k]]
        self.add_summary(attention_summary(images, maps, titles))
        logger.info("TensorBoard attention maps, step %d: %s", self.step,
                    figure_lib.describe_maps(maps))

    def validate(self):
        """End-of-epoch validation: summaries, and ``best/`` when it improved."""
        t0 = time.time()
        acc, xent = self.evaluate()
        seconds = time.time() - t0
        self.add_summary(validation_summary(acc, xent))
        if stop_requested(self.stop):
            raise Interrupted()
        self.summarize_attention()
        if acc > self.best_acc:  # every worker: same weights, same decision
            self.best_acc, self.best_epoch = acc, self.epoch
            best_prefix = os.path.join(self.best_dir, CKPT_NAME)
            with self.writing("the best checkpoint:", "%s-%d" % (best_prefix, self.step)):
                if self.chief:
                    self.graph.best_saver.save(self.sess, best_prefix,
                                               global_step=self.step,
                                               latest_filename="checkpoint")
        logger.info("epoch %d/%d: validation accuracy %.3f (best %.3f, epoch %d), "
                    "step %d, %.1f s validating", self.epoch + 1, self.args.epochs, acc,
                    self.best_acc, self.best_epoch + 1, self.step, seconds)
        return acc

    # -- training -------------------------------------------------------------

    def train_step(self):
        """Runs one step; returns ``(loss, accuracy, images)``, None at the pass's end.

        Raises:
          TrainingFailed: the step's loss or gradient was not finite (nothing
            was applied).
        """
        import tensorflow as tf
        graph, args = self.graph, self.args
        fetch = [graph.train_op] + list(graph.step_metrics)
        feed = {graph.handle: self.handles["train"], graph.train_mode: True}
        if graph.stop_flag is not None:  # a stop asked here ends this step everywhere
            feed[graph.stop_flag] = float(stop_requested(self.local_stop))
        want_summary = self.chief and (self.step + 1) % args.summary_every == 0
        if want_summary:
            fetch.append(graph.train_summary)
        try:
            out = run_step(self.sess, graph, fetch, feed)
        except tf.errors.OutOfRangeError:
            return None
        if out is None:
            raise TrainingFailed(
                "the loss became NaN or infinite at step %d (learning rate %.3g too "
                "high?); stopped without applying that step; last good checkpoint: %s"
                % (self.step + 1, self.sess.run(graph.learning_rate),
                   self.last_good or "none"))
        self.step += 1
        self.position += int(out[3])
        if want_summary:
            self.add_summary(out[-1])
        if graph.stop_flag is not None and out[4] > 0:
            self.stop.agree()
        return float(out[1]), float(out[2]), int(out[3])

    def train_epoch(self):
        """Trains on the rest of the current epoch (or up to the last step).

        Returns:
          True if the epoch's images are used up (the epoch ended).
        """
        args, n_train = self.args, len(self.dataset.train_paths)
        order = data_lib.epoch_order(n_train, args.seed, self.epoch)[self.position:]
        exhausted = len(order) == 0
        if not exhausted:
            mine = order if self.workers is None else self.workers.shard(order,
                                                                         args.batch_size)
            self.graph.train_input.initialize(
                self.sess, [self.dataset.train_paths[i] for i in mine],
                self.dataset.train_labels[mine])
        done = self.steps_per_epoch - int(math.ceil(len(order) / float(args.batch_size)))
        bar = None
        if not args.quiet and not exhausted and self.chief:
            bar = ProgressBar(self.steps_per_epoch,
                              prefix="epoch %d/%d" % (self.epoch + 1, args.epochs))
        t_pass, seen = time.time(), 0
        while (not exhausted and self.step < self.total_steps
               and not stop_requested(self.stop)):
            result = self.train_step()
            if result is None:
                exhausted = True
                break
            loss, acc, count = result
            done += 1
            seen += count
            if bar is not None:
                bar.update(done, {"loss": loss, "acc": acc},
                           rate=seen / max(1e-9, time.time() - t_pass))
            if self.position >= n_train:
                exhausted = True
            elif self.step % args.checkpoint_every == 0 and self.step < self.total_steps:
                self.save("every %d steps" % args.checkpoint_every)
        if bar is not None:
            bar.close()
        if exhausted and seen < len(order):
            logger.warning("%d training image(s) failed to decode in TensorFlow and "
                           "were skipped", len(order) - seen)
        return exhausted

    def _raise_if_stopped(self):
        if stop_requested(self.stop):
            raise Interrupted()

    def train_epochs(self, start_step):
        """Epochs of training, validation and checkpoints until the run's end."""
        while self.step < self.total_steps and self.epoch < self.args.epochs:
            exhausted = self.train_epoch()
            self._raise_if_stopped()
            if not exhausted:
                break  # --max-steps reached inside the epoch
            self.validate()
            self.epoch, self.position = self.epoch + 1, 0
            self.save("end of epoch")
            self._raise_if_stopped()
        if self.best_epoch < 0:
            # Stopped by --max-steps before any epoch ended: validate what we have.
            self.validate()
        if self.step != start_step and not self._saved_this_step():
            self.save("end of run")

    def interrupted(self, start_step):
        """Saves (if a step was trained) and returns the ``Interrupted`` to raise."""
        if self.step == start_step:  # no training step in this run: nothing new to save
            self.close_writer()
            return Interrupted("interrupted before any training step: nothing to save%s; "
                               "run the same command again to resume"
                               % ("; checkpoint %s is intact" % self.restored
                                  if self.restored else ""))
        path = self.save_once("interrupted") or "(the chief's)"
        self.close_writer()
        return Interrupted("interrupted: saved checkpoint %s (step %d); run the same "
                           "command again to resume" % (path, self.step))

    def export(self):
        """Restores the best-validation weights and writes them with the network's
        ``save``; returns the written path."""
        import tensorflow as tf
        graph = self.graph
        path = os.path.join(self.args.train_dir, graph.network.export_name)
        if not self.chief:
            return None
        with self.writing("the export", path, OSError):  # TF errors: reading, not writing
            best = tf.train.latest_checkpoint(self.best_dir)
            if best is not None:
                graph.best_saver.restore(self.sess, best)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return graph.network.save(self.sess, path)

    def run(self):
        """Restores or initialises, trains, validates and exports.

        Returns:
          The result dict of :func:`train`.
        """
        self.restore_or_initialize()
        self.open_writer()
        start_step = self.step
        try:
            self.train_epochs(start_step)
        except Interrupted:
            raise self.interrupted(start_step) from None
        self.close_writer()
        if stop_requested(self.stop):
            raise Interrupted("interrupted before the export: checkpoint %s (step %d) is "
                              "saved; run the same command again to export"
                              % (self.last_good, self.step))
        export_path = self.export()
        if stop_requested(self.stop):
            raise Interrupted("interrupted during the export, which was completed: %s; "
                              "checkpoint %s (step %d)" % (export_path, self.last_good,
                                                          self.step))
        return {"best_accuracy": self.best_acc, "best_epoch": self.best_epoch,
                "global_step": self.step, "export_path": export_path,
                "train_dir": self.args.train_dir, "num_corrupt": self.dataset.num_corrupt}

