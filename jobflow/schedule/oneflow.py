"""OneFlow 0.7's ``flow.optim.lr_scheduler`` names."""

from jobflow._src.schedule.oneflow import ChainedScheduler as ChainedScheduler
from jobflow._src.schedule.oneflow import ConstantLR as ConstantLR
from jobflow._src.schedule.oneflow import CosineAnnealingLR as CosineAnnealingLR
from jobflow._src.schedule.oneflow import CosineAnnealingWarmRestarts as CosineAnnealingWarmRestarts
from jobflow._src.schedule.oneflow import CosineDecayLR as CosineDecayLR
from jobflow._src.schedule.oneflow import CyclicLR as CyclicLR
from jobflow._src.schedule.oneflow import ExponentialLR as ExponentialLR
from jobflow._src.schedule.oneflow import LambdaLR as LambdaLR
from jobflow._src.schedule.oneflow import LinearLR as LinearLR
from jobflow._src.schedule.oneflow import MultiplicativeLR as MultiplicativeLR
from jobflow._src.schedule.oneflow import MultiStepLR as MultiStepLR
from jobflow._src.schedule.oneflow import OneCycleLR as OneCycleLR
from jobflow._src.schedule.oneflow import PolynomialLR as PolynomialLR
from jobflow._src.schedule.oneflow import ReduceLROnPlateau as ReduceLROnPlateau
from jobflow._src.schedule.oneflow import SequentialLR as SequentialLR
from jobflow._src.schedule.oneflow import StepLR as StepLR
from jobflow._src.schedule.oneflow import WarmUpLR as WarmUpLR
from jobflow._src.schedule.oneflow import WarmupLR as WarmupLR

__all__ = [
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "StepLR",
    "MultiStepLR",
    "PolynomialLR",
    "CosineDecayLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "LambdaLR",
    "MultiplicativeLR",
    "SequentialLR",
    "WarmupLR",
    "WarmUpLR",
    "ChainedScheduler",
    "CyclicLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
]
