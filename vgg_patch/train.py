"""``python -m vgg_patch.train``: the ``vgg19-cbam-train`` command.

The command lives in :mod:`vgg_patch.cli.train` and the trainer in
:mod:`vgg_patch.training`; this module keeps ``python -m vgg_patch.train``
and the names code imported from ``vgg_patch.train`` before the split.
"""
import sys

from vgg_patch.cli.common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE,
                                  Interrupted, TrainingFailed, UsageError,
                                  check_precision_flags)
from vgg_patch.cli.train import PROG, build_parser, main, tensorboard_command
from vgg_patch.training.checkpoints import restore_latest, write_failed
from vgg_patch.training.config import (DATA_DEFAULTS, DEMO_SETTINGS, FINE_TUNE_RECIPE,
                                       MAX_BATCH_SIZE, MAX_IMAGE_SIZE, SCRATCH_RECIPE,
                                       check_model_fits, resolve_config)
from vgg_patch.training.dataset import Dataset, prepare_data
from vgg_patch.training.graph import TrainGraph, build_graph
from vgg_patch.training.network import estimate_memory
from vgg_patch.training.optimization import (learning_rate_schedule, run_step,
                                             select_trainable)
from vgg_patch.training.run import train
from vgg_patch.training.run_dir import (CKPT_NAME, CLASSES_FILE, DEFAULT_TRAIN_DIR,
                                        DEMO_TRAIN_DIR, EXPORT_NAME, RUN_FILE,
                                        check_or_write_run_files, checkpoint_candidates,
                                        remove_temp_files)
from vgg_patch.training.summaries import attention_summary

__all__ = [
    "EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "Interrupted",
    "TrainingFailed", "UsageError", "check_precision_flags", "PROG", "build_parser",
    "main", "tensorboard_command", "restore_latest", "write_failed", "DATA_DEFAULTS",
    "DEMO_SETTINGS", "FINE_TUNE_RECIPE", "MAX_BATCH_SIZE", "MAX_IMAGE_SIZE",
    "SCRATCH_RECIPE", "check_model_fits", "resolve_config", "Dataset", "prepare_data",
    "TrainGraph", "build_graph", "estimate_memory", "learning_rate_schedule", "run_step",
    "select_trainable", "train", "CKPT_NAME", "CLASSES_FILE", "DEFAULT_TRAIN_DIR",
    "DEMO_TRAIN_DIR", "EXPORT_NAME", "RUN_FILE", "check_or_write_run_files",
    "checkpoint_candidates", "remove_temp_files", "attention_summary"]

if __name__ == "__main__":
    sys.exit(main())
