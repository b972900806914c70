"""vgg_patch.training.workers: only the chief reads ``--weights`` on a cluster.

The other workers build the network from scratch and receive the chief's
values in the start-up broadcast (every global variable,
``graph.sync_from_chief``), so the file need be on the chief's machine only.
That is safe because the network built without the file has the variables of
the one built from it (names, shapes, dtypes, order): checked here on the
full-size file, graphs only (nothing is initialised).
"""
import json

import pytest
import tensorflow as tf

from slim_attention.distributed import cluster_from_tf_config
from vgg_patch.cli import train as train_cli
from vgg_patch.cli.common import UsageError
from vgg_patch.training import config, workers
from vgg_patch.training.network import Vgg19Network

from vgg_fixtures import full_size_npy

tf1 = tf.compat.v1

WORKER_ONLY = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
WITH_CHIEF = {"chief": ["127.0.0.1:3"], "worker": ["127.0.0.1:4"]}


def _tf_config(monkeypatch, cluster, job, index):
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": cluster, "task": {"type": job, "index": index}}))


@pytest.mark.parametrize("cluster, job, index, receives", [
    (WORKER_ONLY, "worker", 0, False), (WORKER_ONLY, "worker", 1, True),
    (WITH_CHIEF, "chief", 0, False), (WITH_CHIEF, "worker", 0, True)])
def test_every_worker_but_the_chief_receives_the_weights(monkeypatch, cluster, job, index,
                                                         receives):
    _tf_config(monkeypatch, cluster, job, index)
    assert workers.receives_weights() is receives
    task = workers.Workers(cluster_from_tf_config(), 60)
    assert workers.start_weights("vgg19.npy", task) == (None if receives else "vgg19.npy")


def test_one_process_and_a_bad_tf_config_read_the_file(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert workers.receives_weights() is False
    assert workers.start_weights("vgg19.npy", None) == "vgg19.npy"
    monkeypatch.setenv("TF_CONFIG", "{not json")  # from_environment reports it
    assert workers.receives_weights() is False


def test_a_missing_weights_file_stops_the_chief_only(monkeypatch, tmp_path):
    missing = str(tmp_path / "vgg19.npy")
    argv = ["--data-dir", str(tmp_path), "--weights", missing]
    _tf_config(monkeypatch, WORKER_ONLY, "worker", 0)
    with pytest.raises(UsageError, match="no such file"):
        config.resolve_config(train_cli.build_parser().parse_args(argv))
    _tf_config(monkeypatch, WORKER_ONLY, "worker", 1)
    args = config.resolve_config(train_cli.build_parser().parse_args(argv))
    # The same fine-tuning recipe as the chief's: the graphs must match.
    assert (args.weights, args.optimizer, args.weight_decay) == (missing, "momentum", 5e-4)


def _variables(weights):
    with tf.Graph().as_default() as graph:
        images = tf1.placeholder(tf.float32, [None, 224, 224, 3])
        Vgg19Network(1000, weights).build(images, tf1.placeholder(tf.bool, []))
        return [(v.op.name, v.shape.as_list(), v.dtype.base_dtype)
                for v in graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)]


def test_the_network_without_the_file_has_the_same_variables(tmp_path_factory):
    from_file = _variables(full_size_npy(tmp_path_factory))
    assert len(from_file) == 2 * 16 + 2 * 3 + 9  # conv, fc, CBAM (7 + 2 moving statistics)
    assert from_file == _variables(None)


def test_slim_checkpoint_is_read_by_the_chief_only(monkeypatch, tmp_path):
    """slim-attention-train's ``--checkpoint`` follows ``--weights``: a missing
    file stops the chief only, and the other workers build from scratch with
    the chief's recipe (the broadcast brings the restored values)."""
    from types import SimpleNamespace
    from vgg_patch.cli import slim_train
    missing = str(tmp_path / "resnet_v1_50.ckpt")
    argv = ["--model", "resnet_v1_50", "--data-dir", str(tmp_path), "--checkpoint", missing]
    dataset = SimpleNamespace(class_names=["a", "b"])
    _tf_config(monkeypatch, WORKER_ONLY, "worker", 0)
    with pytest.raises(UsageError, match="no such checkpoint"):
        slim_train.resolve_slim_config(slim_train.build_parser().parse_args(argv))
    _tf_config(monkeypatch, WORKER_ONLY, "worker", 1)
    args = slim_train.resolve_slim_config(slim_train.build_parser().parse_args(argv))
    assert (args.checkpoint, args.optimizer) == (missing, "momentum")  # the recipe
    assert slim_train.make_network(args, dataset).checkpoint is None
    _tf_config(monkeypatch, WORKER_ONLY, "worker", 0)
    assert slim_train.make_network(args, dataset).checkpoint == missing
    monkeypatch.delenv("TF_CONFIG")
    assert slim_train.make_network(args, dataset).checkpoint == missing
