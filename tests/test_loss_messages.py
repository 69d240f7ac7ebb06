"""Loss functions name the arguments that look swapped and show both shapes."""

import jax.numpy as jnp
import pytest

import jobflow as flow
from jobflow.errors import ArgumentError


def test_sparse_softmax_swapped_arguments():
    labels, logits = jnp.zeros((32, 3)), jnp.zeros((32,), jnp.int32)
    with pytest.raises(ArgumentError) as e:
        flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    assert str(e.value) == (
        "sparse_softmax_cross_entropy_with_logits(labels, logits) takes labels shape logits.shape[:-1] "
        "(one class id per row of logits); got labels shape (32, 3) and logits shape (32,): did you swap "
        "them? sparse_softmax_cross_entropy_with_logits(labels, logits) takes labels first"
    )


def test_sparse_softmax_wrong_shape_without_a_swap_hint():
    with pytest.raises(ArgumentError) as e:
        flow.nn.sparse_softmax_cross_entropy_with_logits(jnp.zeros(4, jnp.int32), jnp.zeros((3, 5)))
    message = str(e.value)
    assert "got labels shape (4,) and logits shape (3, 5)" in message and "swap" not in message


def test_sparse_softmax_float_labels():
    with pytest.raises(ArgumentError, match=r"needs integer labels \(class ids\); got labels dtype float32$"):
        flow.nn.sparse_softmax_cross_entropy_with_logits(jnp.zeros(3), jnp.zeros((3, 5)))


@pytest.mark.parametrize("fn", ["softmax_cross_entropy_with_logits", "sigmoid_cross_entropy_with_logits"])
def test_dense_losses(fn):
    loss = getattr(flow.nn, fn)
    with pytest.raises(ArgumentError) as e:
        loss(jnp.zeros((32,), jnp.int32), jnp.zeros((32, 3)))
    assert (
        f"{fn}(labels, logits) takes labels shape equal to logits shape; got labels shape (32,) and "
        "logits shape (32, 3): labels look like class ids" in str(e.value)
    )
    assert "use sparse_softmax_cross_entropy_with_logits" in str(e.value)
    with pytest.raises(
        ArgumentError, match=r"got labels shape \(32, 3, 1\) and logits shape \(32, 3\): did you swap"
    ):
        loss(jnp.zeros((32, 3, 1)), jnp.zeros((32, 3)))
