"""flow.nn's functional losses against PyTorch (and OneFlow's own formulas where they
differ from PyTorch: unclamped BCE logs, KLDivLoss 'mean' over elements), ctc_loss,
smooth_l1_loss, sparse_cross_entropy and combined_margin_loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jobflow as flow

torch = pytest.importorskip("torch")
F = torch.nn.functional

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 5)).astype(np.float32)
T = RNG.normal(size=(4, 5)).astype(np.float32)
P = RNG.uniform(0.05, 0.95, size=(4, 5)).astype(np.float32)
Y = (RNG.uniform(size=(4, 5)) > 0.5).astype(np.float32)
W = RNG.uniform(0.5, 2.0, size=(4, 5)).astype(np.float32)


def t(x):
    return torch.from_numpy(np.array(x))


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_pointwise_losses_against_torch(reduction):
    j = jnp.asarray
    close(flow.nn.L1Loss(j(X), j(T), reduction), F.l1_loss(t(X), t(T), reduction=reduction).numpy())
    close(flow.nn.MSELoss(j(X), j(T), reduction), F.mse_loss(t(X), t(T), reduction=reduction).numpy())
    close(
        flow.nn.BCELoss(j(P), j(Y), j(W), reduction),
        F.binary_cross_entropy(t(P), t(Y), t(W), reduction=reduction).numpy(),
    )
    pw = RNG.uniform(0.5, 3, size=(5,)).astype(np.float32)
    ours = flow.nn.BCEWithLogitsLoss(j(X * 10), j(Y), j(W), j(pw), reduction)
    ref = F.binary_cross_entropy_with_logits(t(X * 10), t(Y), t(W), reduction=reduction, pos_weight=t(pw))
    close(ours, ref.numpy(), 1e-4)
    target = np.sign(T[:, 0]).astype(np.float32)
    ours = flow.nn.MarginRankingLoss(j(X[:, 0]), j(X[:, 1]), j(target), 0.3, reduction)
    close(ours, F.margin_ranking_loss(t(X[:, 0]), t(X[:, 1]), t(target), 0.3, reduction=reduction).numpy())


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
def test_triplet_margin_loss_against_torch(p):
    a, pos, neg = (RNG.normal(size=(6, 4)).astype(np.float32) for _ in range(3))
    ours = flow.nn.TripletMarginLoss(jnp.asarray(a), jnp.asarray(pos), jnp.asarray(neg), margin=0.5, p=p)
    ref = F.triplet_margin_loss(t(a), t(pos), t(neg), margin=0.5, p=p)
    close(ours, ref.numpy(), 1e-4)
    with pytest.raises(NotImplementedError):
        flow.nn.TripletMarginLoss(jnp.asarray(a), jnp.asarray(pos), jnp.asarray(neg), swap=True)


def test_kl_div_loss_is_oneflows_elementwise_mean():
    logp = np.log(P / P.sum(1, keepdims=True)).astype(np.float32)
    q = np.where(Y > 0, P, 0.0).astype(np.float32)  # zero targets contribute 0 (no NaN)
    elementwise = F.kl_div(t(logp), t(q), reduction="none").numpy()
    close(flow.nn.KLDivLoss(jnp.asarray(logp), jnp.asarray(q)), elementwise.mean())
    ours = flow.nn.KLDivLoss(jnp.asarray(logp), jnp.asarray(np.log(P)), log_target=True, reduction="sum")
    close(ours, F.kl_div(t(logp), t(np.log(P)), reduction="sum", log_target=True).numpy(), 1e-4)


@pytest.mark.parametrize("beta", [1.0, 0.5])
def test_smooth_l1_loss_is_elementwise(beta):
    ours = flow.smooth_l1_loss(jnp.asarray(X), jnp.asarray(T), beta=beta)
    close(ours, F.smooth_l1_loss(t(X), t(T), reduction="none", beta=beta).numpy())


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_ctc_loss_against_torch(reduction):
    steps, batch, classes = 12, 3, 5
    logits = RNG.normal(size=(steps, batch, classes)).astype(np.float32)
    log_probs = np.asarray(jax.nn.log_softmax(logits, axis=-1))
    targets = np.array([[1, 2, 2, 0], [3, 3, 3, 4], [1, 4, 0, 0]], np.int32)
    in_len = np.array([12, 6, 10], np.int32)
    tg_len = np.array([3, 4, 1], np.int32)  # row 1 needs 4 + 2 repeats = 6 frames: just feasible
    ours = flow.ctc_loss(
        jnp.asarray(log_probs),
        jnp.asarray(targets),
        jnp.asarray(in_len),
        jnp.asarray(tg_len),
        reduction=reduction,
    )
    ref = F.ctc_loss(t(log_probs), t(targets).long(), t(in_len).long(), t(tg_len).long(), reduction=reduction)
    close(ours, ref.numpy(), 1e-3)


def test_ctc_loss_infeasible_alignment_is_inf_or_zero():
    log_probs = jnp.asarray(jax.nn.log_softmax(RNG.normal(size=(4, 1, 3)), axis=-1), jnp.float32)
    args = (log_probs, jnp.asarray([[1, 1, 1]]), jnp.asarray([4]), jnp.asarray([3]))  # needs 5 frames
    assert np.isinf(np.asarray(flow.ctc_loss(*args, reduction="none"))).all()
    close(flow.ctc_loss(*args, reduction="none", zero_infinity=True), [0.0])


def test_sparse_cross_entropy_and_distributed_softmax_xent():
    probs = jax.nn.softmax(jnp.asarray(X), axis=-1)
    labels = jnp.asarray([[0], [4], [2], [1]], jnp.int32)
    close(flow.nn.sparse_cross_entropy(labels, probs), -np.log(np.asarray(probs)[np.arange(4), [0, 4, 2, 1]]))
    close(
        flow.nn.distributed_sparse_softmax_cross_entropy_with_logits(labels, jnp.asarray(X)),
        F.cross_entropy(t(X), torch.tensor([0, 4, 2, 1]), reduction="none").numpy(),
    )


def test_combined_margin_loss_changes_only_the_label_column():
    cos = np.clip(X / 3, -0.99, 0.99).astype(np.float32)
    label = np.array([1, 0, 4, 2], np.int32)
    out = np.asarray(flow.combined_margin_loss(jnp.asarray(cos), jnp.asarray(label), m1=1.0, m2=0.5, m3=0.1))
    ref = cos.copy()
    rows = np.arange(4)
    ref[rows, label] = np.cos(np.arccos(cos[rows, label]) + 0.5) - 0.1
    close(out, ref)
