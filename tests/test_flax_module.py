"""flax.linen modules inside jobs: params and batch_stats as named store variables."""

import flax.linen as nn
import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Dense(16)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.relu(x)
        x = nn.Dropout(0.1, deterministic=not train)(x)
        return nn.Dense(2)(x)


def _jobs():
    model = MLP()

    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((32, 4)), y: tp.Numpy.Placeholder((32,), dtype=flow.int32)) -> tp.Numpy:
        logits = flow.layers.flax_module(model, x, train=True, name="mlp")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        flow.optimizer.SGD(0.2, momentum=0.9).minimize(loss)
        return loss

    @flow.global_function(type="predict")
    def predict(x: tp.Numpy.Placeholder((32, 4))) -> tp.Numpy:
        return flow.layers.flax_module(model, x, train=False, name="mlp")

    return model, train, predict


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    return x, (x[:, 0] - x[:, 2] > 0).astype(np.int32)


def test_flax_variables_live_in_the_store_with_path_names():
    _, train, _ = _jobs()
    train(*_data())
    v = flow.get_all_variables()
    assert v["mlp-Dense_0-kernel"].shape == (4, 16)
    assert v["mlp-Dense_1-bias"].shape == (2,)
    assert v["mlp-batch_stats-BatchNorm_0-mean"].shape == (16,)
    assert "mlp-Dense_0-kernel-momentum" in v  # trained by the job's optimizer
    assert "mlp-batch_stats-BatchNorm_0-mean-momentum" not in v  # batch_stats not trainable


def test_flax_module_trains_updates_batch_stats_and_shares_with_predict():
    model, train, predict = _jobs()
    x, y = _data()
    first = train(x, y).mean()
    for _ in range(60):
        last = train(x, y).mean()
    assert last < 0.3 * first
    v = {k: a.numpy() for k, a in flow.get_all_variables().items()}
    assert not np.allclose(v["mlp-batch_stats-BatchNorm_0-mean"], 0)
    # the predict job uses the trained params and running statistics, through flax itself
    variables = {
        "params": {
            "Dense_0": {"kernel": v["mlp-Dense_0-kernel"], "bias": v["mlp-Dense_0-bias"]},
            "BatchNorm_0": {"scale": v["mlp-BatchNorm_0-scale"], "bias": v["mlp-BatchNorm_0-bias"]},
            "Dense_1": {"kernel": v["mlp-Dense_1-kernel"], "bias": v["mlp-Dense_1-bias"]},
        },
        "batch_stats": {
            "BatchNorm_0": {
                "mean": v["mlp-batch_stats-BatchNorm_0-mean"],
                "var": v["mlp-batch_stats-BatchNorm_0-var"],
            }
        },
    }
    np.testing.assert_allclose(predict(x), model.apply(variables, x, train=False), rtol=1e-5, atol=1e-5)
    acc = (predict(x).argmax(1) == y).mean()
    assert acc > 0.9


def test_flax_init_is_deterministic_from_seed_and_name():
    def init_values(seed):
        flow.clear_default_session()
        flow.config.seed(seed)
        _, train, _ = _jobs()
        train.compile()
        return flow.get_all_variables()["mlp-Dense_0-kernel"].numpy()

    a, b, c = init_values(0), init_values(0), init_values(1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_flax_module_type_error():
    @flow.global_function()
    def job(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        return flow.layers.flax_module(lambda x: x, x)

    with pytest.raises(TypeError, match="flax.linen.Module"):
        job(np.ones(2, np.float32))
