"""A case's rows reach the report as they are measured, also when the case
fails or times out later (``python -m pytest bench/test_bench_rows.py``).

The case here is a small script (no TensorFlow) that emits two rows with
``harness.emit_row`` and then fails, hangs or finishes.
"""
import os
import sys
import textwrap

import pytest

BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH)

import harness  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402

_CASE = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, %r)
    import harness
    mode = sys.argv[-1]
    harness.emit_row({"model": "a", "img_s": 1.5})
    harness.emit_row({"model": "b", "img_s": 2.5, "times_s": [0.1, 0.2]})
    harness.emit_row({"contestant": "c", "step_s": 0.3}, table="rounds")
    if mode == "fail":
        raise RuntimeError("the case broke after its rows")
    if mode == "hang":
        time.sleep(60)
    harness.emit_result({"rows": ["final"]})
""") % BENCH


@pytest.fixture
def case(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_TF_BEHAVIOR", raising=False)  # no TensorFlow in the case
    path = tmp_path / "case.py"
    path.write_text(_CASE)
    return str(path)


def test_rows_of_a_failed_case_are_kept_with_its_error(case):
    seen = []
    res, err, _ = harness.run_worker(case, "fake", ["fail"],
                                     on_row=lambda table, row: seen.append((table, row)))
    assert [(t, r.get("model") or r.get("contestant")) for t, r in seen] == [
        ("rows", "a"), ("rows", "b"), ("rounds", "c")]
    assert err.startswith("exit 1: ") and "RuntimeError: the case broke" in err
    assert res == {"rows": [seen[0][1], seen[1][1]], "rounds": [seen[2][1]], "partial": True}


def test_rows_of_a_timed_out_case_are_kept(case):
    res, err, wall = harness.run_worker(case, "fake", ["hang"], timeout=3)
    assert err == "timed out after 3 s" and wall < 30
    assert [r["model"] for r in res["rows"]] == ["a", "b"] and res["partial"]


def test_a_finished_case_gives_its_own_result(case):
    res, err, _ = harness.run_worker(case, "fake", ["finish"])
    assert err is None and res == {"rows": ["final"]}


def test_the_report_shows_a_failed_case_s_rows(case):
    cases = {}
    assert run.run_one(case, "defaults", ["fail"], cases) is False
    text = report.render({"machine": {}, "cases": cases})
    assert "### defaults\n\nFAILED: exit 1: " in text
    assert "rows, as measured before the case stopped (2 rows)" in text
    assert "| model | img_s | times_s |" in text and "| b | 2.5 | [0.1, 0.2] |" in text
    assert "rounds, as measured before the case stopped (1 rows)" in text
