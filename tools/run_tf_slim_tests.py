"""Runs tf-slim's own test suite with ``slim_attention`` imported first.

tf-slim 1.1.0 ships its tests inside the package (``tf_slim/**/*_test.py``).
This runs each test module in a fresh interpreter (as tf-slim's own CI ran each
``py_test`` on its own: several modules switch off eager execution at import
time, which would leak into the next module in one process), with
``slim_attention`` imported before the module, and prints one row per module
and every failing test::

    python tools/run_tf_slim_tests.py                    # all 35 modules
    python tools/run_tf_slim_tests.py --no-compat        # plain tf-slim, for comparison
    python tools/run_tf_slim_tests.py ops/variables_test.py -k ReplicaDevice
    python tools/run_tf_slim_tests.py --json results.json --jobs 2

The ``slim_attention`` imported is this checkout's; ``--root DIR`` takes it
from another checkout (to compare before and after a change).

``nose`` is not installed on current Pythons and one module
(``evaluation_test.py``) imports ``nose.tools.nottest``; the runner, not the
library, provides a stand-in for that one decorator.
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from concurrent import futures

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tf_slim_dir():
    import importlib.util
    spec = importlib.util.find_spec("tf_slim")
    if spec is None:
        raise SystemExit("tf_slim is not installed")
    return os.path.dirname(spec.origin)


def _test_modules(root):
    found = []
    for folder, _, files in os.walk(root):
        found.extend(os.path.relpath(os.path.join(folder, name), root)
                     for name in files if name.endswith("_test.py"))
    return sorted(found)


def _install_nose_stub():
    """``from nose.tools import nottest`` for the one module that needs it."""
    try:
        import nose.tools  # noqa: F401
        return
    except ImportError:
        pass

    def nottest(fn):
        fn.__test__ = False
        return fn

    nose = types.ModuleType("nose")
    tools = types.ModuleType("nose.tools")
    tools.nottest = nottest
    nose.tools = tools
    sys.modules["nose"] = nose
    sys.modules["nose.tools"] = tools


class _Recorder:
    """pytest plugin: one (nodeid, outcome, message) row per test."""

    def __init__(self):
        self.rows = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            outcome = report.outcome
            if report.when != "call" and report.outcome == "failed":
                outcome = "error"
            message = ""
            if report.outcome != "passed" and report.longrepr is not None:
                crash = getattr(report.longrepr, "reprcrash", None)
                message = crash.message if crash is not None else str(report.longrepr)
                if isinstance(report.longrepr, tuple):  # skip: (file, line, reason)
                    message = report.longrepr[2]
            previous = self.rows.get(report.nodeid)
            if previous is None or previous[0] == "passed":
                self.rows[report.nodeid] = (outcome, message.splitlines()[0][:300]
                                            if message else "")

    def pytest_collectreport(self, report):
        if report.failed:
            self.rows[report.nodeid or "<collect>"] = (
                "error", str(report.longrepr).strip().splitlines()[-1][:300])


def _run_one(path, compat, extra, out_json):
    """In the child process: import slim_attention, run one module under pytest."""
    _install_nose_stub()
    if compat:
        import slim_attention  # noqa: F401  (applies the repairs)
    import pytest
    recorder = _Recorder()
    args = [path, "-q", "-p", "no:cacheprovider", "-p", "no:benchmark",
            "--rootdir", os.path.dirname(path), "-c", os.devnull,
            "-W", "ignore::DeprecationWarning"] + extra
    code = pytest.main(args, plugins=[recorder])
    with open(out_json, "w") as f:
        json.dump({"code": int(code), "rows": recorder.rows}, f)


def _run_module(root, name, compat, extra, root_dir):
    with tempfile.TemporaryDirectory() as tmp:
        out_json = os.path.join(tmp, "rows.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--child",
               os.path.join(root, name), "--out", out_json]
        if not compat:
            cmd.append("--no-compat")
        for arg in extra:
            cmd.append("--pytest-arg=" + arg)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root_dir, env.get("PYTHONPATH")]))
        start = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        seconds = time.time() - start
        if os.path.exists(out_json):
            with open(out_json) as f:
                rows = json.load(f)["rows"]
        else:
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            rows = {name: ("error", tail[-1][:300] if tail else "no output")}
    return name, rows, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*",
                        help="test files relative to tf_slim/ (default: all)")
    parser.add_argument("--no-compat", action="store_true",
                        help="do not import slim_attention (plain tf-slim)")
    parser.add_argument("--root", default=_REPO,
                        help="checkout whose slim_attention is imported (default: this one)")
    parser.add_argument("-k", default=None, help="pytest -k expression")
    parser.add_argument("--jobs", type=int, default=1, help="modules run at once")
    parser.add_argument("--json", default=None, help="write every test's outcome here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--pytest-arg", action="append", default=[],
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _run_one(args.child, not args.no_compat, args.pytest_arg, args.out)
        return 0

    root = _tf_slim_dir()
    modules = args.modules or _test_modules(root)
    extra = ["-k", args.k] if args.k else []
    results = {}
    with futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        jobs = [pool.submit(_run_module, root, name, not args.no_compat, extra,
                            os.path.abspath(args.root))
                for name in modules]
        for job in futures.as_completed(jobs):
            name, rows, seconds = job.result()
            results[name] = (rows, seconds)
            print("  done %-45s %6.1f s" % (name, seconds), file=sys.stderr, flush=True)

    totals = collections.Counter()
    print("%-45s %7s %7s %7s %7s %7s" % ("module (tf_slim/)", "passed", "failed",
                                         "error", "skipped", "seconds"))
    for name in modules:
        rows, seconds = results[name]
        counts = collections.Counter(outcome for outcome, _ in rows.values())
        totals.update(counts)
        print("%-45s %7d %7d %7d %7d %7.1f" % (
            name, counts["passed"], counts["failed"], counts["error"],
            counts["skipped"], seconds))
    print("%-45s %7d %7d %7d %7d" % ("total", totals["passed"], totals["failed"],
                                     totals["error"], totals["skipped"]))
    bad = [(name, nodeid, message) for name in modules
           for nodeid, (outcome, message) in sorted(results[name][0].items())
           if outcome in ("failed", "error")]
    if bad:
        print("\nfailing tests:")
        for name, nodeid, message in bad:
            print("  %s::%s\n      %s" % (name, nodeid.split("::", 1)[-1], message))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({name: {"seconds": results[name][1], "tests": results[name][0]}
                       for name in modules}, f, indent=1, sort_keys=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
