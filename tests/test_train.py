"""Train jobs: the compiled update, the step counter, the schedule, loss averaging."""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.runtime.session import default_session

X = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
Y = np.array([1.0, 2.0], np.float32)


def _job(lr, momentum=0.9, loss_kind="vector", **opt_kw):
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2, 2)), y: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.zeros_initializer())
        r = flow.matmul(x, flow.reshape(w, (2, 1)))[:, 0] - y
        loss = flow.math.square(r)
        if loss_kind == "scalar":
            loss = flow.math.reduce_mean(loss)
        flow.optimizer.SGD(lr, momentum=momentum, **opt_kw).minimize(loss)
        return loss

    return train


def _w():
    return flow.get_all_variables()["w"].numpy()


def test_two_step_sgd_momentum_hand_computed():
    # Hand derivation (mean of squared residuals, OneFlow momentum rule):
    # step 0: r = [-1, -2], g = [-7, -10], buf = [0.7, 1.0], w = [0.7, 1.0]
    # step 1: r = [1.7, 4.1], g = [14.0, 19.8], buf = 0.9*buf - 0.1*g = [-0.77, -1.08],
    #         w = [-0.07, -0.08]
    train = _job(0.1)
    loss0 = train(X, Y)
    np.testing.assert_allclose(loss0, [1.0, 4.0], rtol=1e-6)
    np.testing.assert_allclose(_w(), [0.7, 1.0], rtol=1e-6)
    loss1 = train(X, Y)
    np.testing.assert_allclose(loss1, [2.89, 16.81], rtol=1e-6)
    np.testing.assert_allclose(_w(), [-0.07, -0.08], rtol=1e-5, atol=1e-6)
    vs = flow.get_all_variables()
    np.testing.assert_allclose(vs["w-momentum"], [-0.77, -1.08], rtol=1e-6)
    assert vs["System-Train-TrainStep-train"] == 2


def test_lr_lives_in_the_momentum_buffer_and_boundary_is_inclusive():
    # PiecewiseConstantScheduler([0], [0.1, 0.05]): step 0 uses 0.1 (t <= 0), step 1 0.05.
    # buf2 = 0.9 * [0.7, 1.0] - 0.05 * [14.0, 19.8] = [-0.07, -0.09]; w2 = [0.63, 0.91]
    train = _job(flow.optimizer.PiecewiseConstantScheduler([0], [0.1, 0.05]))
    train(X, Y)
    assert train.last_lr == pytest.approx(0.1)
    train(X, Y)
    assert train.last_lr == pytest.approx(0.05)
    np.testing.assert_allclose(_w(), [0.63, 0.91], rtol=1e-5)


def test_plain_sgd_step():
    train = _job(0.1, momentum=0.0)
    train(X, Y)
    np.testing.assert_allclose(_w(), [0.7, 1.0], rtol=1e-6)
    assert not any(k.endswith("-momentum") for k in flow.get_all_variables())


def test_trace_once_over_many_calls_with_changing_lr():
    boundaries = list(range(0, 120, 10))
    values = [0.01 * (i + 1) for i in range(len(boundaries) + 1)]
    train = _job(flow.optimizer.PiecewiseConstantScheduler(boundaries, values), momentum=0.0)
    seen = []
    for _ in range(130):
        train(X * 0.01, Y * 0.01)
        seen.append(train.last_lr)
    assert train.num_traces == 1
    expected = [values[sum(t > b for b in boundaries)] for t in range(130)]
    np.testing.assert_allclose(seen, expected, rtol=1e-6)
    assert train.last_info["step"] == 129


def test_vector_loss_is_averaged_like_its_mean():
    train = _job(0.1, loss_kind="vector")
    train(X, Y)
    w_vector = _w()
    flow.clear_default_session()
    train = _job(0.1, loss_kind="scalar")
    train(X, Y)
    np.testing.assert_allclose(_w(), w_vector, rtol=1e-7)


def test_several_losses_add_their_means():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2, 2)), y: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.zeros_initializer())
        r = flow.matmul(x, flow.reshape(w, (2, 1)))[:, 0] - y
        flow.optimizer.SGD(0.1, momentum=0.0).minimize([flow.math.square(r), 3.0 * w])
        return r

    train(X, Y)
    # g = [-7, -10] (first loss) + mean(3 w) -> 3/2 per element
    np.testing.assert_allclose(_w(), [-0.1 * (-7 + 1.5), -0.1 * (-10 + 1.5)], rtol=1e-6)


def test_regularizers_hand_computed():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2, 3))) -> tp.Numpy:
        w = flow.get_variable(
            "w",
            (3,),
            initializer=flow.constant_initializer(0.0),
            regularizer=flow.regularizers.l1_l2(l1=0.1, l2=0.5),
        )
        loss = flow.math.reduce_sum(x * flow.reshape(w, (1, 3)), axis=1)
        flow.optimizer.SGD(0.1, momentum=0.0).minimize(loss)
        return loss

    flow.load_variables({"w": np.array([1.0, -1.0, 0.0], np.float32)})
    train(np.zeros((2, 3), np.float32))
    # g = l1*sign(w) + l2*w with sign(0) = +1: [0.6, -0.6, 0.1]
    np.testing.assert_allclose(_w(), [0.94, -0.94, -0.01], rtol=1e-6)


def test_global_norm_clipping_hand_computed():
    train = _job(0.1, momentum=0.0, grad_clipping=flow.optimizer.grad_clipping.by_global_norm(1.0))
    train(X, Y)
    norm = np.sqrt(7.0**2 + 10.0**2)
    np.testing.assert_allclose(_w(), [0.7 / norm, 1.0 / norm], rtol=1e-6)
    assert train.last_info["grad_norm"] == pytest.approx(norm, rel=1e-6)


def test_global_norm_clipping_of_zero_gradients_is_not_nan():
    train = _job(0.1, momentum=0.9, grad_clipping=flow.optimizer.grad_clipping.by_global_norm(1.0))
    train(np.zeros((2, 2), np.float32), np.zeros(2, np.float32))
    assert np.all(_w() == 0.0)


def test_static_loss_scale_gives_the_same_update():
    train = _job(0.1, loss_scale_factor=1024.0)
    train(X, Y)
    train(X, Y)
    np.testing.assert_allclose(_w(), [-0.07, -0.08], rtol=1e-5, atol=1e-6)


def test_lr_as_list_callable_and_optax_schedule():
    import optax

    for lr in ([0.1, 0.05], lambda step: 0.1 / (1.0 + step), optax.linear_schedule(0.1, 0.05, 1)):
        flow.clear_default_session()
        train = _job(lr, momentum=0.0)
        train(X, Y)
        assert train.last_lr == pytest.approx(0.1)
        train(X, Y)
        assert train.last_lr == pytest.approx(0.05)


def test_minimize_in_predict_job_raises():
    @flow.global_function(type="predict")
    def job(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.zeros_initializer())
        flow.optimizer.SGD(0.1).minimize(x * w)
        return x

    with pytest.raises(RuntimeError, match="predict job"):
        job(np.ones(2, np.float32))
    assert default_session().store == {}


def test_train_job_without_minimize_raises():
    @flow.global_function(type="train")
    def job(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        return x * flow.get_variable("w", (2,), initializer=flow.zeros_initializer())

    with pytest.raises(RuntimeError, match="does not call Optimizer.minimize"):
        job.compile()
    assert default_session().store == {}


def test_two_minimize_calls_raise():
    @flow.global_function(type="train")
    def job(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        w = flow.get_variable("w", (2,), initializer=flow.zeros_initializer())
        flow.optimizer.SGD(0.1).minimize(x * w)
        flow.optimizer.SGD(0.1).minimize(x * w)
        return x

    with pytest.raises(RuntimeError, match="CombinedOptimizer"):
        job.compile()


def test_optimizer_variables_selection():
    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
        a = flow.get_variable("a", (2,), initializer=flow.ones_initializer())
        b = flow.get_variable("b", (2,), initializer=flow.ones_initializer())
        loss = flow.math.reduce_sum(x * a + x * b)
        flow.optimizer.SGD(0.5, momentum=0.0, variables=["a"]).minimize(loss)
        return loss

    train(np.ones(2, np.float32))
    v = flow.get_all_variables()
    np.testing.assert_allclose(v["a"], [0.5, 0.5])
    np.testing.assert_allclose(v["b"], [1.0, 1.0])


def test_optimizer_selecting_unknown_or_no_variable_raises():
    def make(variables):
        @flow.global_function(type="train")
        def train(x: tp.Numpy.Placeholder((2,))) -> tp.Numpy:
            a = flow.get_variable("a", (2,), initializer=flow.ones_initializer())
            flow.optimizer.SGD(0.5, variables=variables).minimize(x * a)
            return x

        return train

    with pytest.raises(ValueError, match=r"names variables the job does not use.*\['nope'\]"):
        make(["nope"]).compile()
    flow.clear_default_session()
    with pytest.raises(ValueError, match="selects no variable"):
        make(r"^zzz").compile()


def test_sgd_argument_errors():
    with pytest.raises(ValueError, match="momentum"):
        flow.optimizer.SGD(0.1, momentum=1.5)
    with pytest.raises(TypeError, match="lr_scheduler"):
        flow.optimizer.SGD("fast")
    with pytest.raises(ValueError, match="loss_scale_factor"):
        flow.optimizer.SGD(0.1, loss_scale_factor=-1)
    with pytest.raises(ValueError, match="clip_norm"):
        flow.optimizer.grad_clipping.by_global_norm(0.0)


def test_minimize_outside_a_job_raises():
    with pytest.raises(RuntimeError, match="inside the body"):
        flow.optimizer.SGD(0.1).minimize(np.ones(2, np.float32))


def test_same_seed_gives_bitwise_identical_training_with_dropout():
    def run(seed):
        flow.clear_default_session()
        flow.config.seed(seed)

        @flow.global_function(type="train")
        def train(
            x: tp.Numpy.Placeholder((16, 8)), y: tp.Numpy.Placeholder((16,), dtype=flow.int32)
        ) -> tp.Numpy:
            h = flow.layers.dense(
                x, 32, activation=flow.nn.relu, kernel_initializer=flow.xavier_uniform_initializer(), name="h"
            )
            h = flow.nn.dropout(h, rate=0.3)
            logits = flow.layers.dense(h, 4, kernel_initializer=flow.xavier_uniform_initializer(), name="out")
            loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
            flow.optimizer.SGD(0.1, momentum=0.9).minimize(loss)
            return loss

        rng = np.random.default_rng(0)
        for _ in range(20):
            train(rng.normal(size=(16, 8)).astype(np.float32), rng.integers(0, 4, 16).astype(np.int32))
        return {k: v.numpy().copy() for k, v in flow.get_all_variables().items()}

    a, b, c = run(3), run(3), run(4)
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert not np.array_equal(a["h-weight"], c["h-weight"])


def test_training_reduces_the_loss_of_a_small_network():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32)

    @flow.global_function(type="train")
    def train(x: tp.Numpy.Placeholder((64, 4)), y: tp.Numpy.Placeholder((64,), dtype=flow.int32)) -> tp.Numpy:
        h = flow.layers.dense(
            x, 16, activation=flow.nn.relu, kernel_initializer=flow.xavier_uniform_initializer()
        )
        logits = flow.layers.dense(h, 2, kernel_initializer=flow.xavier_uniform_initializer())
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        flow.optimizer.SGD(0.5, momentum=0.9).minimize(loss)
        return loss

    first = train(x, y).mean()
    for _ in range(100):
        last = train(x, y).mean()
    assert last < 0.1 * first
