"""The benchmark sections of issue 15 run at tiny sizes and compare like with like: each
contender computes the same losses or loads the same values (timings are not asserted).
The transformer section is not run here (compiling it takes over 10 s on 2 cores); it
checks its own first losses against the hand-written step when it runs."""

import numpy as np
import pytest

from benchmarks import checkpoint_io, first_call, overhead, transformer


def test_checkpoint_io_round_trips_every_contender(tmp_path):
    result = checkpoint_io.run(((1, 1),), root=str(tmp_path))
    assert "1 MiB: 1 rounds; jobflow's loaded values differ by 0" in result["notes"]
    ops = {(r["operation"], r["implementation"]) for r in result["rows"]}
    assert ("save", "jobflow") in ops and ("load", checkpoint_io.SAFETENSORS) in ops
    for row in result["rows"]:
        assert row["size (MiB)"] == 1.0 and row["MB/s"] > 0
        if row["implementation"] == checkpoint_io.SAFETENSORS:
            assert row["vs safetensors"] == 1.0
    assert list(tmp_path.iterdir()) == []  # the temporary files are gone


def test_overhead_job_and_hand_written_step_compute_the_same_losses():
    result = overhead.run((3,), budget=6, rounds=1)
    jobflow = next(r for r in result["rows"] if r["implementation"] == "jobflow")
    assert jobflow["first losses"] < 1e-6
    assert {r["implementation"] for r in result["rows"]} == {"jobflow", overhead.HAND, overhead.DIRECT}


def test_overhead_job_matches_plain_sgd_by_hand():
    # loss = sum(y) + sum_i sum(v_i * x); one SGD step moves every v_i by -lr * x
    job = overhead.overhead_job(2)
    x, y = np.array([1.0, 2.0, 3.0, 4.0], np.float32), np.array([0.5], np.float32)
    assert float(job(x, y)) == pytest.approx(0.5 + 2 * 0.5 * 10.0)
    assert float(job(x, y)) == pytest.approx(0.5 + 2 * float(np.sum((0.5 - 0.01 * x) * x)), rel=1e-6)


def test_first_call_breakdown_adds_up():
    data = first_call._data()
    import jobflow as flow

    flow.clear_default_session()
    result = first_call._jobflow(2, data)
    parts = result["discovery_s"] + result["trace_lower_s"] + result["xla_compile_s"]
    assert result["discovery_s"] > 0 and result["xla_compile_s"] > 0
    assert parts <= result["first_call_s"]
    from jobflow._src.runtime import plan

    assert not hasattr(plan.discover, "__wrapped__")  # the timer unwrapped what it timed


def test_warmup_factor_is_transformers_linear_schedule():
    assert transformer.warmup_factor(0) == 0.0
    assert transformer.warmup_factor(transformer.WARMUP // 2) == 0.5
    assert transformer.warmup_factor(transformer.WARMUP) == 1.0
    assert transformer.warmup_factor(transformer.TOTAL) == 0.0


def test_first_call_rows_are_medians_and_per_process_ratios():
    def m(first, cpu):
        return {
            "first_call_s": first,
            "cpu_s": cpu,
            "discovery_s": 0.5,
            "trace_lower_s": 1.0,
            "xla_compile_s": 2.0,
        }

    results = {
        "jobflow": [m(6.0, 3.0), m(9.0, 4.0), m(4.0, 2.0)],
        "hand": [m(3.0, 3.0), m(3.0, 2.0), m(4.0, 2.0)],
    }
    own, hand = first_call._rows(128, results)
    assert own["first call (s)"] == 6.0 and own["CPU (s)"] == 3.0
    assert own["vs hand-written"] == 2.0  # per-process ratios 2, 3, 1
    assert own["CPU vs hand-written"] == 1.0  # 1, 2, 1
    assert own["discovery share"] == 0.5 / 6.0
    assert hand["vs hand-written"] == 1.0 and hand["discovery (s)"] is None
