"""``flow.parallel_cast`` / ``flow.hierarchical_parallel_cast``: layout hints inside a body.

What a cast must do: leave values and gradients exactly as without it (the expectation is
the same job on one device), and lay the array out as asked, which a ``tp.ListNumpy``
result shows directly (its pieces are what each device holds).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jobflow as flow
import jobflow.typing as tp
from jobflow._src.core import trace as trace_impl
from jobflow._src.ops import distribute_ops
from jobflow._src.runtime import session as session_impl

FOUR = flow.scope.placement("cpu", "0:0-3")
MESH_2X2 = flow.scope.placement("cpu", "0:0-3", (2, 2))
X = np.arange(96, dtype=np.float32).reshape(8, 12) / 10


def _pieces(placement, cast):
    cfg = flow.function_config().default_placement_scope(placement)

    @flow.global_function(type="predict", function_config=cfg)
    def job(x: tp.Numpy.Placeholder((8, 12))) -> tp.ListNumpy:
        return cast(x * 2)

    return job(X)


@pytest.mark.parametrize(
    "distribute, piece",
    [
        (flow.distribute.split(1), (8, 3)),
        (flow.distribute.split(0), (2, 12)),
        (flow.distribute.broadcast(), (8, 12)),
        ("S(1)", (8, 3)),
    ],
)
def test_parallel_cast_lays_the_array_out_and_keeps_its_values(distribute, piece):
    pieces = _pieces(FOUR, lambda h: flow.parallel_cast(h, distribute=distribute))
    assert [p.shape for p in pieces] == [piece] * 4
    axis = 1 if piece == (8, 3) else 0
    whole = pieces[0] if piece == (8, 12) else np.concatenate(pieces, axis=axis)
    np.testing.assert_array_equal(whole, X * 2)


def test_without_a_distribute_the_cast_changes_nothing():
    pieces = _pieces(FOUR, lambda h: flow.parallel_cast(h, name="cast"))
    assert [p.shape for p in pieces] == [(2, 12)] * 4  # the batch split XLA propagated


def test_hierarchical_parallel_cast_names_both_axes_of_a_2d_mesh():
    pieces = _pieces(MESH_2X2, lambda h: flow.hierarchical_parallel_cast(h, ["S(0)", "S(1)"]))
    assert [p.shape for p in pieces] == [(4, 6)] * 4
    pieces = _pieces(MESH_2X2, lambda h: flow.hierarchical_parallel_cast(h, ["B", "B"]))
    assert [p.shape for p in pieces] == [(8, 12)] * 4
    # one distribute on a 2-D mesh names the "model" axis; the batch keeps its "data" split
    pieces = _pieces(MESH_2X2, lambda h: flow.parallel_cast(h, distribute=flow.distribute.split(1)))
    assert [p.shape for p in pieces] == [(4, 6)] * 4


def _train(placement, cast, steps=5):
    flow.clear_default_session()
    cfg = flow.function_config()
    if placement is not None:
        cfg.default_placement_scope(placement)

    @flow.global_function(type="train", function_config=cfg)
    def train(x: tp.Numpy.Placeholder((8, 12)), y: tp.Numpy.Placeholder((8,), dtype=flow.int32)) -> tp.Numpy:
        init = flow.xavier_uniform_initializer()
        h = flow.layers.dense(x, 16, activation=flow.math.tanh, kernel_initializer=init, name="h")
        h = cast(h)
        logits = flow.layers.dense(h, 4, kernel_initializer=init, name="o")
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        flow.optimizer.Adam(0.001).minimize(loss)
        return loss

    rng = np.random.default_rng(5)
    losses = [
        train(rng.normal(size=(8, 12)).astype(np.float32), rng.integers(0, 4, 8).astype(np.int32))
        for _ in range(steps)
    ]
    return np.stack(losses), {k: np.asarray(v) for k, v in session_impl.default_session().store.items()}


@pytest.mark.parametrize(
    "placement, kwargs",
    [
        (FOUR, {"distribute": flow.distribute.split(1), "gradient_distribute": flow.distribute.split(0)}),
        (
            FOUR,
            {"distribute": flow.distribute.broadcast(), "gradient_distribute": flow.distribute.broadcast()},
        ),
        (MESH_2X2, {"distribute": flow.distribute.split(1), "gradient_distribute": flow.distribute.split(1)}),
    ],
)
def test_casts_leave_training_exactly_as_on_one_device(placement, kwargs):
    ref = _train(None, lambda h: h)
    run = _train(placement, lambda h: flow.parallel_cast(h, **kwargs))
    np.testing.assert_allclose(run[0], ref[0], rtol=0, atol=1e-5)
    for k, v in ref[1].items():
        np.testing.assert_allclose(run[1][k], v, rtol=0, atol=1e-5, err_msg=k)


def test_gradient_distribute_constrains_the_cotangent_and_not_the_value():
    mesh = Mesh(np.asarray(jax.devices()[:4]), ("data",))
    rows, cols = NamedSharding(mesh, P("data")), NamedSharding(mesh, P(None, "data"))

    def loss(x):
        return jnp.sum(jnp.sin(distribute_ops._cast(x, None, cols)))

    text = jax.jit(jax.grad(loss), in_shardings=rows).lower(jnp.ones((8, 12))).as_text()
    constraints = [line for line in text.splitlines() if "sharding_constraint" in line]
    assert len(constraints) == 1 and '[{}, {"data"}]' in constraints[0]  # the cotangent only
    np.testing.assert_allclose(
        jax.jit(jax.grad(loss))(jnp.ones((8, 12))), np.cos(np.ones((8, 12))), rtol=1e-6
    )


@pytest.mark.parametrize(
    "grad_mode, grad, expected",
    [
        ("restore", None, []),
        (None, None, []),
        ("identity", None, ['[{}, {"data"}]']),
        ("manual", ["S(0)"], ['[{"data"}, {}]']),
    ],
)
def test_hierarchical_parallel_cast_grad_modes_constrain_the_cotangent(grad_mode, grad, expected):
    ctx = trace_impl.TraceContext("j", True, False, None, mesh=Mesh(np.asarray(jax.devices()[:4]), ("data",)))

    def loss(x):
        with trace_impl.active(ctx):
            y = flow.hierarchical_parallel_cast(
                x, ["S(1)"], grad_mode=grad_mode, grad_parallel_distribution=grad
            )
        return jnp.sum(jnp.sin(y))

    text = jax.jit(jax.grad(loss)).lower(jnp.ones((8, 12))).as_text()
    constraints = [
        line.split("<@mesh, ")[1].split(">")[0] for line in text.splitlines() if "sharding_constraint" in line
    ]
    assert sorted(constraints) == sorted(['[{}, {"data"}]', *expected])  # the value's, then the cotangent's


def test_in_the_mirrored_view_a_cast_does_nothing():
    cfg = flow.function_config().default_placement_scope(FOUR)
    cfg.default_logical_view(flow.scope.mirrored_view())

    @flow.global_function(type="predict", function_config=cfg)
    def job(x: tp.ListNumpy.Placeholder((2, 12))) -> tp.ListNumpy:
        return flow.parallel_cast(x + 1, distribute=flow.distribute.split(1))

    out = job([X[2 * i : 2 * i + 2] for i in range(4)])
    np.testing.assert_array_equal(np.concatenate(out), X + 1)


# ------------------------------------------------------------------------------ bad inputs


def _call(cast, placement=FOUR):
    cfg = flow.function_config().default_placement_scope(placement)

    @flow.global_function(type="predict", function_config=cfg)
    def job(x: tp.Numpy.Placeholder((8, 12))) -> tp.Numpy:
        return cast(x)

    return job(X)


def test_a_split_axis_the_array_lacks_raises_naming_it():
    with pytest.raises(ValueError, match=r"parallel_cast\(distribute\).*split\(2\).*\(8, 12\)"):
        _call(lambda x: flow.parallel_cast(x, distribute=flow.distribute.split(2)))
    with pytest.raises(ValueError, match=r"parallel_cast\(gradient_distribute\).*split\(3\)"):
        _call(lambda x: flow.parallel_cast(x, gradient_distribute=flow.distribute.split(3)))


def test_a_distribute_of_a_wrong_type_raises_echoing_it():
    with pytest.raises(TypeError, match=r"parallel_cast\(distribute\) distribute must be .*got 1"):
        _call(lambda x: flow.parallel_cast(x, distribute=1))
    with pytest.raises(TypeError, match=r"needs an array .*got list"):
        _call(lambda x: flow.parallel_cast([x], distribute=flow.distribute.split(0)))


def test_a_2d_layout_on_a_1d_mesh_raises():
    with pytest.raises(ValueError, match=r"2-D layout .*hierarchy=\(data, model\)"):
        _call(lambda x: flow.hierarchical_parallel_cast(x, ["S(0)", "B"]))


def test_hierarchical_parallel_cast_rejects_an_unknown_grad_mode():
    with pytest.raises(ValueError, match="grad_mode='auto'"):
        _call(lambda x: flow.hierarchical_parallel_cast(x, ["B"], grad_mode="auto"))


def test_parallel_cast_outside_a_job_raises():
    with pytest.raises(RuntimeError, match="parallel_cast can only be used inside"):
        flow.parallel_cast(jnp.ones(3), distribute=flow.distribute.broadcast())
