"""The README's migration example: it is examples/migrate_tf1_slim.py, and it runs.

The README shows the script in full; this test fails if the two ever drift
apart, if the script differs from a TF1 slim script in anything but its import
lines, or if it stops training, saving and restoring.
"""
import os
import re
import subprocess
import sys

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join("examples", "migrate_tf1_slim.py")
AFTER_IMPORTS = ["import tensorflow.compat.v1 as tf", "import slim_attention as slim"]
BEFORE_IMPORTS = ["import tensorflow as tf", "slim = tf.contrib.slim"]


def _migration_section():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    match = re.search(r"<!-- section:migration -->\n(.*?)<!-- /section:migration -->",
                      readme, re.S)
    assert match, "README.md has no migration section"
    return match.group(1)


def _python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_readme_block_is_the_example_file():
    section = _migration_section()
    marker = "<!-- example:%s -->\n" % EXAMPLE.replace(os.sep, "/")
    assert marker in section
    block = _python_blocks(section[section.index(marker):])[0]
    with open(os.path.join(ROOT, EXAMPLE), encoding="utf-8") as handle:
        assert block == handle.read()


def test_only_the_import_lines_differ_from_tf1():
    """The README's before/after blocks are the import lines, and the script
    uses slim_attention only through that one import."""
    blocks = _python_blocks(_migration_section())
    code_lines = [[line for line in block.splitlines() if not line.startswith("#")]
                  for block in blocks[:2]]
    assert code_lines == [BEFORE_IMPORTS, AFTER_IMPORTS]
    with open(os.path.join(ROOT, EXAMPLE), encoding="utf-8") as handle:
        source = handle.read()
    imports = [line.split("#")[0].strip() for line in source.splitlines()
               if "tensorflow" in line.split("#")[0] or "slim_attention" in line]
    assert imports == AFTER_IMPORTS
    assert source.count("slim_attention") == 1


def test_example_trains_saves_and_restores(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, EXAMPLE, str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    out = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert float(out["last loss"]) < 0.5 * float(out["first loss"])
    assert float(out["accuracy"]) >= 0.9  # the classes differ in brightness
    assert float(out["restored max difference"]) < 1e-4
    # The checkpoint holds TF1 slim names, batch-norm moving statistics included.
    stored = dict(tf.compat.v1.train.list_variables(out["saved"]))
    for name in ("conv1/weights", "conv1/BatchNorm/beta", "conv1/BatchNorm/moving_mean",
                 "conv2/BatchNorm/moving_variance", "logits/weights", "logits/biases"):
        assert name in stored, name
    moving_mean = tf.compat.v1.train.load_variable(out["saved"],
                                                   "conv1/BatchNorm/moving_mean")
    assert np.abs(moving_mean).max() > 0  # UPDATE_OPS ran during training
