"""Shared test setup: quiet TensorFlow, the graph-mode behaviour the suite runs
in, a fresh graph for every test, and a runner for scripts that must run in
processes of their own.

The suite runs in either of the two modes TF1 code runs in on TF2:

* ``--tf-behavior=v2`` (the default): TF2 behaviour, ``tf.compat.v1`` graphs;
* ``--tf-behavior=v1`` (or ``TEST_TF_BEHAVIOR=v1`` in the environment): after
  ``tf.compat.v1.disable_v2_behavior()`` -- ``Dimension`` shapes,
  ``RefVariable``s by default, v1 control flow -- in the test process and in
  every Python subprocess a test starts (see ``tests/v1_behavior``).

A test that only makes sense in one mode says so with
``@pytest.mark.tf_behavior("v2", reason="...")``; it is skipped in the other.

Disk: a passed test's ``tmp_path`` is removed as soon as it ends (pytest.ini's
``tmp_path_retention_policy = failed``; a failed test's stays for a look), a
module's shared files live in ``module_tmp_path`` and go when the module is
done, and the terminal summary names the largest footprint under the base
temporary folder and the test that had it. Only the session's full-size
``vgg19.npy`` (tests/vgg_fixtures.py) stays for the whole pass.
"""
import os
import shutil
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

BEHAVIORS = ("v2", "v1")
_V1_SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "v1_behavior")


def pytest_addoption(parser):
    parser.addoption(
        "--tf-behavior", choices=BEHAVIORS,
        default=os.environ.get("TEST_TF_BEHAVIOR", "v2") or "v2",
        help="v2: TF2 behaviour (default); v1: run every test, and every Python "
             "subprocess a test starts, after tf.compat.v1.disable_v2_behavior()")


def pytest_configure(config):
    behavior = config.getoption("--tf-behavior")
    if behavior not in BEHAVIORS:
        raise pytest.UsageError("TEST_TF_BEHAVIOR must be one of %s, got %r"
                                % (", ".join(BEHAVIORS), behavior))
    os.environ["TEST_TF_BEHAVIOR"] = behavior
    if behavior == "v1":
        tf.compat.v1.disable_v2_behavior()
        path = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = _V1_SITE + (os.pathsep + path if path else "")


def pytest_report_header(config):
    return "TensorFlow behaviour: %s" % config.getoption("--tf-behavior")


def pytest_collection_modifyitems(config, items):
    behavior = config.getoption("--tf-behavior")
    for item in items:
        marker = item.get_closest_marker("tf_behavior")
        if marker is None:
            continue
        if not marker.args or any(arg not in BEHAVIORS for arg in marker.args):
            raise pytest.UsageError("%s: tf_behavior marker needs one or more of %s"
                                    % (item.nodeid, BEHAVIORS))
        if behavior not in marker.args:
            reason = marker.kwargs.get("reason", "")
            item.add_marker(pytest.mark.skip(
                reason="only under TF %s behaviour%s" % (
                    "/".join(marker.args), ": " + reason if reason else "")))


@pytest.fixture(scope="session")
def tf_behavior(pytestconfig):
    """``'v1'`` or ``'v2'``: the graph-mode behaviour this run of the suite uses."""
    return pytestconfig.getoption("--tf-behavior")


@pytest.fixture(scope="module")
def module_tmp_path(request, tmp_path_factory):
    """A folder for the files one test module's tests share (a data folder, a
    training run, a checkpoint), removed when the module's tests are done:
    ``tmp_path_factory``'s folders would otherwise stay until the session ends."""
    path = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _folder_bytes(root):
    """The disk space the files under ``root`` take: allocated blocks, not their
    apparent sizes (the hostile-file tests write sparse files of terabytes)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:  # removed while we walk
                pass
    return total


_FOOTPRINT = {"bytes": 0, "test": None}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Measures the base temporary folder at the end of each test's body, before
    its ``tmp_path`` is removed: the pass's largest disk footprint."""
    try:
        return (yield)
    finally:
        factory = getattr(item.config, "_tmp_path_factory", None)
        basetemp = getattr(factory, "_basetemp", None)
        if basetemp is not None:
            used = _folder_bytes(basetemp)
            if used > _FOOTPRINT["bytes"]:
                _FOOTPRINT.update(bytes=used, test=item.nodeid)


def pytest_terminal_summary(terminalreporter):
    if _FOOTPRINT["test"] is not None:
        terminalreporter.write_line(
            "largest footprint under the base temporary folder: %.0f MB, at the end of %s"
            % (_FOOTPRINT["bytes"] / 2**20, _FOOTPRINT["test"]))


@pytest.fixture
def graph():
    """A fresh default graph, so tests never share variables or ops."""
    g = tf.Graph()
    with g.as_default():
        yield g


@pytest.fixture
def run_in_new_processes(tmp_path):
    """Runs Python scripts one after another, each in a fresh interpreter with
    ``tmp_path`` as ``sys.argv[1]`` (to pass files between them); a failing
    script fails the test with its stderr. Returns the last script's stdout."""
    def run(*scripts):
        out = ''
        for script in scripts:
            proc = subprocess.run([sys.executable, '-c', script, str(tmp_path)],
                                  capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stderr[-3000:]
            out = proc.stdout
        return out
    return run
