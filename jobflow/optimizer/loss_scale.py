"""Loss-scale policies: OneFlow's static and dynamic rules, MindSpore's loss-scale managers."""

from jobflow._src.optimizer.loss_scale import FLT_MAX as FLT_MAX
from jobflow._src.optimizer.loss_scale import DynamicLossScaleManager as DynamicLossScaleManager
from jobflow._src.optimizer.loss_scale import DynamicLossScalePolicy as DynamicLossScalePolicy
from jobflow._src.optimizer.loss_scale import FixedLossScaleManager as FixedLossScaleManager
from jobflow._src.optimizer.loss_scale import LossScalePolicy as LossScalePolicy
from jobflow._src.optimizer.loss_scale import StaticLossScalePolicy as StaticLossScalePolicy
from jobflow._src.optimizer.loss_scale import dynamic_loss_scale as dynamic_loss_scale
from jobflow._src.optimizer.loss_scale import static_loss_scale as static_loss_scale

__all__ = [
    "LossScalePolicy",
    "StaticLossScalePolicy",
    "DynamicLossScalePolicy",
    "static_loss_scale",
    "dynamic_loss_scale",
    "FixedLossScaleManager",
    "DynamicLossScaleManager",
    "FLT_MAX",
]
