"""Every optimizer converges on a convex problem and a small network, without recompiling.

One train job holds both problems on disjoint variables: least squares ``x @ w ~ y``
(convex; its minimum is 0) and a 4-8-1 ReLU network fitting a smooth target. The loss
of each is returned separately.
"""

import numpy as np
import optax
import pytest

import jobflow as flow
import jobflow.typing as tp

O = flow.optimizer
STEPS = 150
BIAS_AND_NORM = O.BIAS_AND_NORM


def _cosine(lr):
    return O.CosineScheduler(base_lr=lr, steps=STEPS, alpha=0.05)


OPTIMIZERS = {
    "SGD": lambda: O.SGD(_cosine(0.05), momentum=0.9),
    "SGDW": lambda: O.SGDW(_cosine(0.05), momentum=0.9, weight_decay=1e-4),
    "Momentum": lambda: O.Momentum(_cosine(0.05), 0.9, weight_decay=1e-4, use_nesterov=True),
    "Adam": lambda: O.Adam(_cosine(0.1)),
    "AdamW": lambda: O.AdamW(_cosine(0.1), weight_decay=1e-3, weight_decay_excludes=BIAS_AND_NORM),
    "LazyAdam": lambda: O.LazyAdam(_cosine(0.1)),
    "LARS": lambda: O.LARS(_cosine(1.0), lars_coefficient=0.02, weight_decay=1e-4),
    "LAMB": lambda: O.LAMB(_cosine(0.05), weight_decay=1e-3),
    "RMSProp": lambda: O.RMSProp(_cosine(0.05)),
    "Adagrad": lambda: O.Adagrad(_cosine(0.5)),
    "Ftrl": lambda: O.Ftrl(1.0, l2=1e-4),  # constant: FTRL recomputes w from lr (see its docs)
    "ProximalAdagrad": lambda: O.ProximalAdagrad(_cosine(0.5), l2=1e-4),
    "Adafactor": lambda: O.Adafactor(_cosine(0.05), relative_step=False, scale_parameter=False, beta1=0.9),
    "Optax_adamw": lambda: O.Optax(optax.adamw, _cosine(0.1)),
    "Combined": lambda: O.CombinedOptimizer(
        [O.SGD(_cosine(0.05), momentum=0.9, variables=["lsq"]), O.Adam(_cosine(0.1), variables=r"^net")]
    ),
}


def _job(make_optimizer):
    init = flow.random_normal_initializer(stddev=0.5)

    @flow.global_function(type="train")
    def train(
        x: tp.Numpy.Placeholder((32, 4)), y: tp.Numpy.Placeholder((32,)), y2: tp.Numpy.Placeholder((32,))
    ) -> tp.Numpy:
        w = flow.get_variable("lsq", (4,), initializer=flow.zeros_initializer())
        convex = flow.math.reduce_mean(flow.math.square(flow.matmul(x, flow.reshape(w, (4, 1)))[:, 0] - y))
        h = flow.layers.dense(x, 8, activation=flow.nn.relu, kernel_initializer=init, name="net-hidden")
        out = flow.layers.dense(h, 1, kernel_initializer=init, name="net-out")[:, 0]
        net = flow.math.reduce_mean(flow.math.square(out - y2))
        make_optimizer().minimize(convex + net)
        return flow.stack([convex, net])

    return train


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_converges_without_recompiling(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0])).astype(np.float32)
    y2 = np.tanh(x @ np.array([0.5, -1.0, 1.0, 0.3]) + 0.2).astype(np.float32)
    train = _job(OPTIMIZERS[name])
    first = train(x, y, y2)
    for _ in range(STEPS - 2):
        train(x, y, y2)
    last = train(x, y, y2)
    assert train.num_traces == 1
    assert last[0] < 0.02 * first[0], (first, last)
    assert last[1] < 0.5 * first[1], (first, last)
