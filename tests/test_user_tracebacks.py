"""Tracebacks of user mistakes end at the user's line: jobflow's frames are hidden
(JOBFLOW_TRACEBACK=full keeps them); a job body's own frames stay."""

import os
import traceback

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow.errors import ArgumentError, JobDefinitionError, JobInputError

JOBFLOW = os.path.dirname(flow.__file__) + os.sep


def _files(excinfo) -> list[str]:
    return [frame.filename for frame in traceback.extract_tb(excinfo.value.__traceback__)]


def _predict():
    @flow.global_function(type="predict")
    def predict(x: tp.Numpy.Placeholder((8, 4))) -> tp.Numpy:
        return flow.layers.dense(x, 2, name="d")

    return predict


def test_a_bad_call_ends_at_the_callers_line():
    predict = _predict()
    with pytest.raises(JobInputError, match=r"argument 'x': expected shape \(8, 4\)") as e:
        predict(np.ones((8, 3), np.float32))
    files = _files(e)
    assert files[-1] == __file__ and not any(f.startswith(JOBFLOW) for f in files)
    with pytest.raises(JobInputError) as e:
        predict.compile(np.ones((2,), np.float32))
    assert _files(e)[-1] == __file__
    with pytest.raises(JobInputError) as e:
        predict.run_steps(np.ones((8, 4), np.float32))
    assert _files(e)[-1] == __file__ and not any(f.startswith(JOBFLOW) for f in _files(e))


def test_an_error_in_the_body_shows_the_body_line_and_no_jobflow_frame():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((8, 4)), y: tp.Numpy.Placeholder((8,), dtype=flow.int32)) -> tp.Numpy:
        logits = flow.layers.dense(x, 3, name="d")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(logits, y)  # swapped
        flow.optimizer.SGD(0.1).minimize(loss)
        return loss

    with pytest.raises(ArgumentError, match="did you swap them") as e:
        train(np.ones((8, 4), np.float32), np.zeros(8, np.int32))
    tb = traceback.extract_tb(e.value.__traceback__)
    assert tb[-1].filename == __file__ and tb[-1].name == "train"
    assert "sparse_softmax_cross_entropy_with_logits(logits, y)" in tb[-1].line
    assert not any(f.filename.startswith(JOBFLOW) for f in tb)


def test_a_constructor_typo_ends_at_the_users_line():
    with pytest.raises(ArgumentError, match="did you mean 'steps'") as e:
        flow.optimizer.CosineScheduler(0.1, step=10)
    assert _files(e) == [__file__]
    with pytest.raises(ArgumentError, match=r"Adam\(beta1\)") as e:  # a check inside the constructor
        flow.optimizer.Adam(0.1, beta1=1.5)
    assert _files(e) == [__file__]


def test_a_bad_definition_ends_at_the_users_line():
    with pytest.raises(JobDefinitionError) as e:
        flow.global_function(type="training")
    assert _files(e) == [__file__]


def test_a_bug_in_jobflow_keeps_its_frames(monkeypatch):
    predict = _predict()
    predict.compile()

    def broken(*args, **kwargs):
        raise KeyError("internal")

    monkeypatch.setattr(predict, "_run", broken)
    with pytest.raises(KeyError) as e:
        predict(np.ones((8, 4), np.float32))
    assert _files(e)[-1] == __file__  # the monkeypatched function: not a jobflow file, yet kept
    assert any(f.startswith(JOBFLOW) for f in _files(e))  # Job.__call__ stays


def test_full_tracebacks_on_request(monkeypatch):
    monkeypatch.setenv("JOBFLOW_TRACEBACK", "full")
    predict = _predict()
    with pytest.raises(JobInputError) as e:
        predict(np.ones((8, 3), np.float32))
    assert _files(e)[-1].startswith(JOBFLOW)
