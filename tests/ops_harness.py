"""Runs an op inside a real job: ``run_body(lambda x: ..., x, train=...)``."""

import jobflow as flow
import jobflow.typing as tp


def run_body(job_body, x, train=False, steps=1):
    """Runs ``job_body(x)`` in a predict job, or in a train job with an lr-0 update of a
    dummy variable (so the job is a valid train job), ``steps`` times; the last output
    (or all of them when ``steps > 1``)."""

    @flow.global_function(type="train" if train else "predict")
    def job(x: tp.Numpy.Placeholder(x.shape, dtype=x.dtype)) -> tp.Numpy:
        out = job_body(x)
        if train:
            dummy = flow.get_variable("dummy", (), initializer=flow.zeros_initializer())
            loss = flow.math.reduce_mean(flow.cast(out, flow.float32)) + dummy
            flow.optimizer.SGD(0.0, momentum=0.0).minimize(loss)
        return out

    outs = [job(x) for _ in range(steps)]
    return outs[-1] if steps == 1 else outs
