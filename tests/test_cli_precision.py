"""--bf16 and --winograd on both commands: one training step, then predictions."""
import os

from train_helpers import CLASSES, base_args, make_image_folder, saved_steps
from vgg_patch.cli import predict as predict_cli
from vgg_patch.cli import train as train_cli


def _one_step_run(tmp_path, capsys, flag):
    """Trains one step with ``flag`` on a small folder; returns (train_dir, an image)."""
    data = make_image_folder(str(tmp_path / "data"), per_class=4, corrupt=False)
    train_dir = str(tmp_path / "train")
    rc = train_cli.main(base_args(data, train_dir, "--epochs", "1", "--max-steps", "1",
                                  flag, "-q"))
    assert rc == 0, capsys.readouterr().err
    assert saved_steps(train_dir) == [1]
    return train_dir, os.path.join(data, "square", "square_0.jpg")


def test_bf16_flag_trains_and_predicts(tmp_path, capsys):
    train_dir, image = _one_step_run(tmp_path, capsys, "--bf16")
    capsys.readouterr()
    assert predict_cli.main(["--train-dir", train_dir, "--bf16", image]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == image
    probs = [float(line.split()[0]) for line in lines[1:]]
    assert len(probs) == 3 and abs(sum(probs) - 1.0) < 0.02


def test_winograd_flag_trains_and_predicts_as_the_direct_network(tmp_path, capsys):
    train_dir, image = _one_step_run(tmp_path, capsys, "--winograd")
    outputs = {}
    for flags in ([], ["--winograd"]):
        capsys.readouterr()
        assert predict_cli.main(["--train-dir", train_dir, image] + flags) == 0
        lines = capsys.readouterr().out.strip().splitlines()
        assert lines[0] == image
        outputs[tuple(flags)] = {name: float(p) for p, name in
                                 (line.split(None, 1) for line in lines[1:])}
    direct, wino = outputs[()], outputs[("--winograd",)]
    assert sorted(direct) == sorted(wino) == sorted(CLASSES)
    for name in CLASSES:  # printed rounded; equal up to float32 round-off
        assert abs(wino[name] - direct[name]) < 2e-3, (direct, wino)
    capsys.readouterr()
    assert predict_cli.main(["--train-dir", train_dir, image, "--winograd", "--bf16"]) == 2
    assert "--winograd and --bf16 do not go together" in capsys.readouterr().err
