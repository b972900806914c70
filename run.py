#!/usr/bin/env python3
"""The project's two commands; each sets up what it needs on first use.

    python3 run.py demo [ARGS...]   retrain the CBAM VGG19 on the built-in demo
                                    (vgg19-cbam-train ARGS; see its --help)
    python3 run.py test [ARGS...]   the whole test suite, once under TF2 behaviour
                                    and once under TF1 behaviour
                                    (disable_v2_behavior()); ARGS go to pytest,
                                    and --tf-behavior=v1|v2 runs one pass only
    python3 run.py setup            only create or refresh the environment

The first use creates a virtual environment in ``.venv/`` beside this file and
installs the project into it (``pip install -e ".[test]"``, a few minutes:
TensorFlow is large); later uses reuse it and reinstall only when
``setup.py`` changed. ``SLIM_ATTENTION_VENV=DIR`` puts the environment
elsewhere. Needs nothing but a Python the project supports (see
``SUPPORTED_PYTHON``); standard library only.
"""
import hashlib
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
# The Python versions TensorFlow 2.21 publishes wheels for and this project was
# installed and tested on (README "Requirements"); keep in step with setup.py.
SUPPORTED_PYTHON = ((3, 10), (3, 13))
BEHAVIORS = ("v2", "v1")
USAGE = __doc__.split("\n\n")[1]


def _say(message):
    print("run.py: " + message, flush=True)


def _venv_dir():
    return os.path.abspath(os.environ.get("SLIM_ATTENTION_VENV") or os.path.join(ROOT, ".venv"))


def _venv_python(venv):
    if os.name == "nt":
        return os.path.join(venv, "Scripts", "python.exe")
    return os.path.join(venv, "bin", "python")


def _install_stamp():
    """What the environment was installed from: setup.py's text."""
    with open(os.path.join(ROOT, "setup.py"), "rb") as f:
        return "setup.py sha256 %s\n" % hashlib.sha256(f.read()).hexdigest()


def _check_python():
    low, high = SUPPORTED_PYTHON
    if not low <= sys.version_info[:2] <= high:
        raise SystemExit(
            "run.py: Python %d.%d is not supported: TensorFlow 2.21 needs Python "
            "%d.%d to %d.%d. Run this file with one of those, e.g. python3.11 run.py"
            % (sys.version_info[0], sys.version_info[1], low[0], low[1], high[0], high[1]))


def setup():
    """Creates the virtual environment and installs the project, once.

    The stamp that marks a finished install is written last, so an install
    that failed or was interrupted is redone on the next use.

    Returns:
      The path of the environment's Python.
    """
    venv = _venv_dir()
    python = _venv_python(venv)
    stamp_path = os.path.join(venv, ".slim-attention-installed")
    stamp = _install_stamp()
    try:
        with open(stamp_path) as f:
            if f.read() == stamp and os.path.exists(python):
                return python
    except OSError:
        pass
    if not os.path.exists(python):
        _check_python()
        if os.path.exists(venv):
            _say("%s exists but holds no Python; recreating it" % venv)
            shutil.rmtree(venv)
        _say("creating the virtual environment %s" % venv)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    _say("installing the project and its test tools into %s "
         "(first use or setup.py changed; a few minutes)" % venv)
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(pip + ["install", "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run(pip + ["install", "-e", ".[test]"], check=True, cwd=ROOT)
    with open(stamp_path + ".tmp", "w") as f:
        f.write(stamp)
    os.replace(stamp_path + ".tmp", stamp_path)
    _say("environment ready")
    return python


def demo(python, args):
    """Runs the trainer (the built-in demo unless ARGS name data)."""
    return subprocess.run([python, "-m", "vgg_patch.train"] + args, cwd=ROOT).returncode


def _asks_for_one_behavior(args):
    return any(arg == "--tf-behavior" or arg.startswith("--tf-behavior=") for arg in args)


def test(python, args):
    """Runs the suite in both behaviours (or the one ARGS name); returns the
    first non-zero pytest exit status, 0 when every pass passed."""
    pytest = [python, "-m", "pytest"]
    if _asks_for_one_behavior(args):
        return subprocess.run(pytest + args, cwd=ROOT).returncode
    results = []
    for behavior in BEHAVIORS:
        _say("test pass under TF %s behaviour" % behavior)
        rc = subprocess.run(pytest + ["--tf-behavior=" + behavior] + args, cwd=ROOT).returncode
        results.append(rc)
        _say("TF %s behaviour: %s" % (behavior, "passed" if rc == 0 else "FAILED (pytest exit %d)" % rc))
    _say("; ".join("%s %s" % (behavior, "passed" if rc == 0 else "FAILED")
                   for behavior, rc in zip(BEHAVIORS, results)))
    return next((rc for rc in results if rc != 0), 0)


COMMANDS = {"demo": demo, "test": test}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command not in COMMANDS and command != "setup":
        print("run.py: unknown command %r; expected one of demo, test, setup\n\n%s"
              % (command, USAGE), file=sys.stderr)
        return 2
    try:
        python = setup()
        return COMMANDS[command](python, args) if command in COMMANDS else 0
    except subprocess.CalledProcessError as e:
        print("run.py: setup failed: %s exited with %d; nothing was marked installed, "
              "so the next run retries" % (" ".join(e.cmd[:4]), e.returncode), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("run.py: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
