"""vgg_patch.fastpath: the commands' default convolution path, and the bf16 hint."""
import pytest

from vgg_patch import fastpath, layout, session
from vgg_patch.cli import predict as predict_cli
from vgg_patch.cli import train as train_cli

CONV_NAMES = [name for name, _, _ in layout.CONV_LAYERS]


def _no_gpu_lookup(monkeypatch):
    def fail():
        raise AssertionError("has_gpu() called where the answer does not matter")
    monkeypatch.setattr(fastpath, "has_gpu", fail)


def test_the_rule_names_real_layers_with_sane_ranges():
    for table in (fastpath.TRAINING_SIDES, fastpath.INFERENCE_SIDES):
        assert set(table) <= set(CONV_NAMES)
        for low, high in table.values():
            assert 1 <= low <= high


@pytest.mark.parametrize("training", [True, False])
def test_winograd_layers_follow_the_table(training):
    table = fastpath.TRAINING_SIDES if training else fastpath.INFERENCE_SIDES
    for size in (16, 32, 48, 64, 96, 112, 160, 224, 320):
        layers = fastpath.winograd_layers(size, training)
        assert list(layers) == [n for n in CONV_NAMES if n in layers]  # network order
        for name in CONV_NAMES:
            side = size
            for _ in range(int(name[4]) - 1):
                side = -(-side // 2)
            want = name in table and table[name][0] <= side <= table[name][1]
            assert (name in layers) == want, (size, name, side)


def test_winograd_pays_at_224_px_on_the_deep_stages():
    # The commands' default size: docs/benchmarks.md's table turns it on there.
    for training in (True, False):
        layers = fastpath.winograd_layers(224, training)
        assert {"conv4_2", "conv4_3", "conv4_4"} <= set(layers), layers
        assert "conv1_1" not in layers


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "224"])
def test_winograd_layers_refuses_a_bad_size(size):
    with pytest.raises(ValueError, match="image_size must be a positive int, got"):
        fastpath.winograd_layers(size, True)


def test_flags_force_either_path(monkeypatch):
    _no_gpu_lookup(monkeypatch)
    forced = fastpath.choose_conv_path(True, False, 16, training=True)
    assert forced.winograd == layout.WINOGRAD_LAYERS
    assert forced.reason.startswith("convolutions: Winograd") and "--winograd" in forced.reason
    direct = fastpath.choose_conv_path(False, False, 224, training=True)
    assert direct.winograd == () and "--no-winograd" in direct.reason


def test_default_is_direct_with_bf16_and_where_winograd_does_not_pay(monkeypatch):
    _no_gpu_lookup(monkeypatch)
    path = fastpath.choose_conv_path(None, True, 224, training=True)
    assert path.winograd == () and "--bf16" in path.reason
    tiny = fastpath.choose_conv_path(None, False, 1, training=False)
    assert tiny.winograd == () and "does not pay at 1 px" in tiny.reason


def test_default_is_winograd_on_cpu_and_direct_on_gpu():
    cpu = fastpath.choose_conv_path(None, False, 224, training=True, gpu=False)
    assert cpu.winograd == fastpath.winograd_layers(224, True) != ()
    assert "default on CPU in float32 at 224 px" in cpu.reason
    assert "--no-winograd" in cpu.reason and "\n" not in cpu.reason
    gpu = fastpath.choose_conv_path(None, False, 224, training=True, gpu=True)
    assert gpu.winograd == () and "GPU" in gpu.reason


def test_has_gpu_asks_tensorflow():
    import tensorflow as tf
    assert fastpath.has_gpu() == bool(tf.config.list_physical_devices("GPU"))


# --------------------------------------------------------------------------
# bf16: read from the CPUID flags the kernel lists, not from the model name
# --------------------------------------------------------------------------
_CPUINFO = ("processor\t: 0\nvendor_id\t: {vendor}\nmodel name\t: {model}\n"
            "flags\t\t: fpu sse2 avx2 avx512f {extra}\n\nprocessor\t: 1\n")


def _cpuinfo(tmp_path, extra, model="AMD EPYC", vendor="AuthenticAMD"):
    path = tmp_path / "cpuinfo"
    path.write_text(_CPUINFO.format(extra=extra, model=model, vendor=vendor))
    return str(path)


@pytest.mark.parametrize("extra,flags", [
    ("avx512_bf16 avx512_vnni", ("avx512_bf16",)),
    ("amx_tile amx_bf16 amx_int8", ("amx_bf16",)),
    ("avx512_bf16 amx_bf16", ("avx512_bf16", "amx_bf16")),
    ("avx512_vnni avx512_bf16x", ()),  # a flag that only contains the name
])
def test_cpu_bf16_flags_reads_the_flags_line(tmp_path, extra, flags):
    path = _cpuinfo(tmp_path, extra)
    assert session.cpu_bf16_flags(path) == flags
    assert session.cpu_has_bf16(path) == bool(flags)


def test_cpu_bf16_flags_ignores_the_model_name(tmp_path):
    path = _cpuinfo(tmp_path, "avx512_vnni", model="Intel Xeon Sapphire Rapids avx512_bf16",
                    vendor="GenuineIntel")
    assert session.cpu_bf16_flags(path) == ()
    assert fastpath.bf16_hint(False, path) is None


def test_cpu_bf16_flags_of_a_missing_file(tmp_path):
    assert session.cpu_bf16_flags(str(tmp_path / "nope")) == ()


def test_bf16_hint_is_one_line_naming_the_flag_speed_and_cost(tmp_path):
    path = _cpuinfo(tmp_path, "avx512_bf16")
    hint = fastpath.bf16_hint(False, path)
    assert "\n" not in hint and "avx512_bf16" in hint and "--bf16" in hint
    assert fastpath.BF16_TRAINING_SPEEDUP in hint and fastpath.BF16_LOGITS_ERROR in hint
    assert "docs/benchmarks.md" in hint
    assert fastpath.bf16_hint(True, path) is None  # already on


def test_benchmarks_page_has_the_hints_figures():
    import os
    page = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "benchmarks.md")
    with open(page, encoding="utf-8") as f:
        text = f.read()
    assert fastpath.BF16_TRAINING_SPEEDUP in text


# --------------------------------------------------------------------------
# The commands' flags
# --------------------------------------------------------------------------
@pytest.mark.parametrize("module", [train_cli, predict_cli])
def test_winograd_is_a_tri_state_flag(module):
    parser = module.build_parser()
    extra = ["x.jpg"] if module is predict_cli else []
    assert parser.parse_args(extra).winograd is None
    assert parser.parse_args(extra + ["--winograd"]).winograd is True
    assert parser.parse_args(extra + ["--no-winograd"]).winograd is False
    assert "--no-winograd" in parser.format_help()
