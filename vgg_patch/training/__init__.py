"""The trainer behind ``vgg19-cbam-train``, one room per job.

A run's path::

    images ---- dataset.prepare_data (vgg_patch.data: scan, check, split)
      |
    config.resolve_config, config.check_model_fits (network.estimate_memory)
      |
    graph.build_graph -> TrainGraph: data.ImagePipeline -> network.build
      |                  -> loss, optimization (schedule, NaN guard), savers
    loop.Trainer: restore (checkpoints) -> steps -> validate -> best/
      |           -> checkpoint of the loop state -> export (network.save)
    run.train: all of the above for one configuration

* :mod:`~vgg_patch.training.config` -- recipes, defaults, validation, memory.
* :mod:`~vgg_patch.training.dataset` -- the run's image lists.
* :mod:`~vgg_patch.training.network` -- the network seen through one small
  interface (VGG19+CBAM is the first implementation).
* :mod:`~vgg_patch.training.graph` -- :class:`TrainGraph` and ``build_graph``.
* :mod:`~vgg_patch.training.optimization` -- schedule, trained variables,
  optimizer, NaN guard, ``run_step``.
* :mod:`~vgg_patch.training.checkpoints` -- finding and restoring checkpoints,
  failed writes.
* :mod:`~vgg_patch.training.run_dir` -- the run folder's file names, run
  files, temp-file clean-up.
* :mod:`~vgg_patch.training.signals` -- Ctrl-C/SIGTERM as a stop request.
* :mod:`~vgg_patch.training.summaries` -- TensorBoard summaries written from
  Python.
* :mod:`~vgg_patch.training.loop` -- the :class:`Trainer`.
* :mod:`~vgg_patch.training.run` -- ``train(args, stop)``.

Importing these modules does not import TensorFlow; their functions do.
"""
