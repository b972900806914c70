"""run.py, the README's two commands: set up once, then run the demo or the tests."""
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def run_py(monkeypatch, tmp_path):
    """run.py as a module, its environment in tmp_path, subprocess.run recorded."""
    spec = importlib.util.spec_from_file_location("run_script", os.path.join(ROOT, "run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("SLIM_ATTENTION_VENV", str(tmp_path / "venv"))
    calls = []

    def fake_run(cmd, check=False, cwd=None):
        calls.append(list(cmd))
        if cmd[1:3] == ["-m", "venv"]:
            python = module._venv_python(cmd[3])
            os.makedirs(os.path.dirname(python))
            open(python, "w").close()
        rc = module.fake_returncodes.pop(0) if module.fake_returncodes else 0
        if check and rc:
            raise subprocess.CalledProcessError(rc, cmd)
        return subprocess.CompletedProcess(cmd, rc)

    module.fake_returncodes = []
    monkeypatch.setattr(module.subprocess, "run", fake_run)
    module.calls = calls
    return module


def test_first_use_installs_then_later_uses_reuse(run_py):
    assert run_py.main(["setup"]) == 0
    assert [c[1:3] for c in run_py.calls] == [["-m", "venv"], ["-m", "pip"], ["-m", "pip"]]
    assert run_py.calls[-1][-3:] == ["install", "-e", ".[test]"]
    del run_py.calls[:]
    assert run_py.main(["setup"]) == 0
    assert run_py.calls == []


def test_a_failed_install_is_redone_on_the_next_use(run_py, capsys):
    run_py.fake_returncodes[:] = [0, 0, 1]  # venv, pip upgrade, project install fails
    assert run_py.main(["setup"]) == 1
    assert "next run retries" in capsys.readouterr().err
    del run_py.calls[:]
    assert run_py.main(["setup"]) == 0
    assert run_py.calls[-1][-3:] == ["install", "-e", ".[test]"]


def test_test_runs_both_behaviours_and_fails_if_either_fails(run_py, capsys):
    run_py.main(["setup"])
    del run_py.calls[:]
    run_py.fake_returncodes[:] = [0, 1]
    assert run_py.main(["test", "-k", "vgg"]) == 1
    assert [c[3:] for c in run_py.calls] == [["--tf-behavior=v2", "-k", "vgg"],
                                             ["--tf-behavior=v1", "-k", "vgg"]]
    assert "v2 passed; v1 FAILED" in capsys.readouterr().out
    del run_py.calls[:]
    assert run_py.main(["test", "--tf-behavior=v1"]) == 0
    assert [c[3:] for c in run_py.calls] == [["--tf-behavior=v1"]]


def test_demo_runs_the_trainer_with_its_arguments(run_py):
    run_py.main(["setup"])
    del run_py.calls[:]
    assert run_py.main(["demo", "--max-steps", "2"]) == 0
    assert run_py.calls[0][1:] == ["-m", "vgg_patch.train", "--max-steps", "2"]


def test_unknown_command_and_unsupported_python_are_one_line(run_py, capsys, monkeypatch):
    assert run_py.main(["bogus"]) == 2
    assert "unknown command 'bogus'" in capsys.readouterr().err
    monkeypatch.setattr(run_py.sys, "version_info", (3, 9, 18))
    with pytest.raises(SystemExit, match="Python 3.9 is not supported: TensorFlow 2.21 needs"):
        run_py.main(["setup"])


def test_help_names_the_commands():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "run.py"), "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "run.py demo" in out and "run.py test" in out
