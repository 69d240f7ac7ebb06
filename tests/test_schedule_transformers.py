"""jobflow.schedule.transformers against transformers' own values (goldens written by
tests/goldens/make_transformers_goldens.py from transformers + torch) and its formulas."""

import json
import math
import pathlib

import numpy as np
import pytest

from jobflow.schedule import transformers as T

GOLDEN = json.loads((pathlib.Path(__file__).parent / "goldens" / "transformers_schedules.json").read_text())


@pytest.mark.parametrize("key", list(GOLDEN["cases"]))
def test_get_scheduler_matches_transformers(key):
    case = GOLDEN["cases"][key]
    sched = T.get_scheduler(key.split("-")[0], GOLDEN["base_lr"], **case["kwargs"])
    got = sched.values(GOLDEN["steps"])
    np.testing.assert_allclose(got, case["values"], rtol=1e-6, atol=1e-12)


def test_named_functions_follow_the_formulas():
    w, n = 10, 110
    got = T.get_linear_schedule_with_warmup(2.0, w, n).values(130)
    want = [2.0 * (t / w if t < w else max(0.0, (n - t) / (n - w))) for t in range(130)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    got = T.get_cosine_schedule_with_warmup(1.0, w, n).values(200)
    want = [
        t / w if t < w else 0.5 * (1 + math.cos(math.pi * 2 * 0.5 * (t - w) / (n - w))) for t in range(200)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)  # unclamped: rises again after N
    assert got[199] > got[110]


def test_hard_restarts_restart_exactly():
    # num_cycles=4 over 400 steps: restarts at 100, 200, 300 give exactly the base rate
    got = T.get_cosine_with_hard_restarts_schedule_with_warmup(1.0, 0, 400, num_cycles=4).values(401)
    assert got[0] == got[100] == got[200] == got[300] == 1.0
    assert got[400] == 0.0 and got[99] < 1e-3


def test_get_scheduler_errors():
    with pytest.raises(ValueError, match=r"get_scheduler\(name\) must be one of .*got name='cosin'"):
        T.get_scheduler("cosin", 0.1, 10, 100)
    with pytest.raises(ValueError, match="requires num_warmup_steps"):
        T.get_scheduler("linear", 0.1)
    with pytest.raises(ValueError, match="requires num_training_steps"):
        T.get_scheduler("cosine", 0.1, 10)
    with pytest.raises(ValueError, match="exactly one of min_lr and min_lr_rate"):
        T.get_scheduler("cosine_with_min_lr", 0.1, 10, 100)
    with pytest.raises(ValueError, match=r"warmup_type\) must be one of"):
        T.get_scheduler("warmup_stable_decay", 0.1, 10, 100, num_decay_steps=10, warmup_type="exp")
    with pytest.raises(ValueError, match="base_lr > lr_end"):
        T.get_scheduler("polynomial", 1e-8, 10, 100)
    with pytest.raises(ValueError, match=r"num_warmup_steps\) must be an int >= 0; got num_warmup_steps=-1"):
        T.get_scheduler("linear", 0.1, -1, 100)


def test_reduce_on_plateau_name():
    sched = T.get_scheduler(
        "reduce_lr_on_plateau", 0.1, scheduler_specific_kwargs={"patience": 0, "factor": 0.5}
    )
    np.testing.assert_allclose(sched.simulate([1.0, 2.0, 3.0]), [0.1, 0.05, 0.025], rtol=1e-6)
