"""PyTorch's ``torch.optim.lr_scheduler`` names and closed forms."""

from jobflow._src.schedule.pytorch import ChainedScheduler as ChainedScheduler
from jobflow._src.schedule.pytorch import ConstantLR as ConstantLR
from jobflow._src.schedule.pytorch import CosineAnnealingLR as CosineAnnealingLR
from jobflow._src.schedule.pytorch import CosineAnnealingWarmRestarts as CosineAnnealingWarmRestarts
from jobflow._src.schedule.pytorch import CyclicLR as CyclicLR
from jobflow._src.schedule.pytorch import ExponentialLR as ExponentialLR
from jobflow._src.schedule.pytorch import LambdaLR as LambdaLR
from jobflow._src.schedule.pytorch import LinearLR as LinearLR
from jobflow._src.schedule.pytorch import MultiplicativeLR as MultiplicativeLR
from jobflow._src.schedule.pytorch import MultiStepLR as MultiStepLR
from jobflow._src.schedule.pytorch import OneCycleLR as OneCycleLR
from jobflow._src.schedule.pytorch import PolynomialLR as PolynomialLR
from jobflow._src.schedule.pytorch import ReduceLROnPlateau as ReduceLROnPlateau
from jobflow._src.schedule.pytorch import SequentialLR as SequentialLR
from jobflow._src.schedule.pytorch import StepLR as StepLR

__all__ = [
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "SequentialLR",
    "ChainedScheduler",
    "CyclicLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
]
