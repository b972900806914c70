"""vgg_patch.training.config: the defaults of each mode, the recipes, the memory check."""
import subprocess
import sys

import pytest

from vgg_patch.cli import train as train_cli
from vgg_patch.cli.common import UsageError
from vgg_patch.training import config, run_dir


def _args(*argv):
    return train_cli.build_parser().parse_args(list(argv))


def test_demo_and_data_defaults(tmp_path):
    demo = config.resolve_config(_args())
    assert demo.demo and demo.image_size == 48 and demo.optimizer == "adam"
    assert demo.flip is False and demo.train_dir == run_dir.DEMO_TRAIN_DIR
    own = config.resolve_config(_args("--data-dir", str(tmp_path), "--trainable-scopes",
                                      " cbam , fc8,"))
    assert not own.demo and own.image_size == 224 and own.flip is True
    assert own.train_dir == run_dir.DEFAULT_TRAIN_DIR
    assert own.trainable_scopes == ["cbam", "fc8"]
    assert config.resolve_config(_args("--data-dir", "x", "--no-flip")).flip is False


def test_recipe_defaults_depend_on_weights(tmp_path):
    recipe = ("optimizer", "learning_rate", "weight_decay", "warmup_epochs")
    weights = tmp_path / "vgg19.npy"
    weights.write_bytes(b"x")  # only its existence is checked here
    for argv, expected in (([], ("adam", 1e-4, 0.0, 0.0)),  # the demo: its own recipe
                           (["--data-dir", "d"], ("adam", 1e-4, 0.0, 1.0)),
                           (["--data-dir", "d", "--weights", str(weights)],
                            ("momentum", 1e-3, 5e-4, 0.0))):
        args = config.resolve_config(_args(*argv))
        assert tuple(getattr(args, k) for k in recipe) == expected, argv
    # Given flags win over either recipe.
    args = config.resolve_config(_args("--data-dir", "d", "--optimizer", "momentum",
                                       "--weight-decay", "1e-5"))
    assert (args.optimizer, args.learning_rate, args.weight_decay) == ("momentum", 1e-4,
                                                                       1e-5)
    text = train_cli.build_parser().format_help()
    assert "from scratch Adam 1e-4" in " ".join(text.split())


def test_sizes_are_checked_against_memory_and_bounds(monkeypatch):
    args = config.resolve_config(_args("--data-dir", "d", "--image-size", "32",
                                       "--batch-size", "4"))
    config.check_model_fits(args, 3)  # fits: no error
    monkeypatch.setattr(config, "available_memory", lambda: (10 ** 8, "MemAvailable"))
    with pytest.raises(UsageError, match=r"--image-size 32 with --batch-size 4 "
                       r"needs about 0\.\d GB .* but only 0\.1 GB is available "
                       r"\(MemAvailable\)"):
        config.check_model_fits(args, 3)
    monkeypatch.setattr(config, "available_memory", lambda: (None, None))
    args.image_size = config.MAX_IMAGE_SIZE + 1
    with pytest.raises(UsageError, match="the limits are --image-size 4096"):
        config.check_model_fits(args, 3)


def test_available_memory_honours_an_address_space_cap():
    # In a child process, so the cap never touches the test process.
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30));"
            "from vgg_patch.training import config; n, src = config.available_memory();"
            "print(n <= 8 << 30, src)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "True the address-space limit (RLIMIT_AS)", out
