"""Adam and AdamW with PyTorch's numbers (``flow.optimizer.pytorch.Adam`` / ``AdamW``).

``flow.optimizer.Adam`` follows OneFlow legacy's kernel (no bias correction by default;
when on, it scales the lr and epsilon is not corrected). These classes take the same
arguments in the same order and compute what ``torch.optim.Adam`` / ``AdamW`` (and
OneFlow >= 0.5's eager ``flow.optim.Adam(do_bias_correction=True)``) compute: bias
correction on by default, applied to the moments, epsilon after the corrected square
root, AdamW's decay by the uncorrected lr. Switching a program between the two is
changing ``flow.optimizer.Adam`` to ``flow.optimizer.pytorch.Adam``.
"""

from __future__ import annotations

from jobflow._src.optimizer import adam as _adam

__all__ = ["Adam", "AdamW"]


class Adam(_adam.Adam):
    r"""PyTorch's ``torch.optim.Adam`` (OneFlow's argument names and order).

    With ``t = step + 1``, ``bc1 = 1 - beta1^t``, ``bc2 = 1 - beta2^t``::

        m <- beta1 * m + (1 - beta1) * g;   v <- beta2 * v + (1 - beta2) * g^2
        w <- w - lr * (m / bc1) / (sqrt(v') / sqrt(bc2) + epsilon)

    (``v' = max(max_v, v)`` with amsgrad, else ``v``). One step from w = 0 with lr = 0.1,
    g = 1: PyTorch moves w by ``0.1 / (1 + 1e-8)``; ``flow.optimizer.Adam`` (OneFlow's
    default, no correction) by ``0.1 * 0.1 / sqrt(0.001) = 0.316228``.
    ``do_bias_correction=False`` gives ``w -= lr * m / (sqrt(v') + epsilon)``, the same as
    ``flow.optimizer.Adam``'s default.
    """

    _corrected_form = "pytorch"

    def __init__(
        self,
        lr_scheduler,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        do_bias_correction: bool = True,
        loss_scale_factor=None,
        grad_clipping=None,
        train_step_lbn=None,
        loss_scale_policy=None,
        variables=None,
        *,
        amsgrad: bool = False,
    ):
        super().__init__(
            lr_scheduler,
            beta1,
            beta2,
            epsilon,
            do_bias_correction,
            loss_scale_factor,
            grad_clipping,
            train_step_lbn,
            loss_scale_policy,
            variables,
            amsgrad=amsgrad,
        )


class AdamW(_adam.AdamW):
    """PyTorch's ``torch.optim.AdamW`` (OneFlow's argument names and order).

    :class:`Adam`'s update plus ``w <- w - lr * wd * w`` with the weight before the step
    and the scheduled lr (not the bias-corrected one, as OneFlow legacy's AdamW uses).
    ``weight_decay`` defaults to None (no decay; PyTorch's default is 1e-2).
    """

    _corrected_form = "pytorch"

    def __init__(
        self,
        lr_scheduler,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        do_bias_correction: bool = True,
        loss_scale_factor=None,
        weight_decay=None,
        weight_decay_includes=None,
        weight_decay_excludes=None,
        grad_clipping=None,
        train_step_lbn=None,
        loss_scale_policy=None,
        variables=None,
        *,
        amsgrad: bool = False,
    ):
        super().__init__(
            lr_scheduler,
            beta1,
            beta2,
            epsilon,
            do_bias_correction,
            loss_scale_factor,
            weight_decay,
            weight_decay_includes,
            weight_decay_excludes,
            grad_clipping,
            train_step_lbn,
            loss_scale_policy,
            variables,
            amsgrad=amsgrad,
        )
