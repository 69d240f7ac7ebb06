"""OneFlow legacy's ``flow.optimizer.*Scheduler`` schedules (its kernel formulas)."""

from jobflow._src.schedule.legacy import CosineScheduler as CosineScheduler
from jobflow._src.schedule.legacy import CustomScheduler as CustomScheduler
from jobflow._src.schedule.legacy import ExponentialScheduler as ExponentialScheduler
from jobflow._src.schedule.legacy import InverseTimeScheduler as InverseTimeScheduler
from jobflow._src.schedule.legacy import LinearCosineScheduler as LinearCosineScheduler
from jobflow._src.schedule.legacy import NaturalExpScheduler as NaturalExpScheduler
from jobflow._src.schedule.legacy import PiecewiseConstantScheduler as PiecewiseConstantScheduler
from jobflow._src.schedule.legacy import PiecewiseScalingScheduler as PiecewiseScalingScheduler
from jobflow._src.schedule.legacy import PolynomialSchduler as PolynomialSchduler
from jobflow._src.schedule.legacy import PolynomialScheduler as PolynomialScheduler
from jobflow._src.schedule.legacy import WarmupConf as WarmupConf
from jobflow._src.schedule.legacy import warmup as warmup

__all__ = [
    "WarmupConf",
    "warmup",
    "PiecewiseConstantScheduler",
    "PiecewiseScalingScheduler",
    "CosineScheduler",
    "PolynomialScheduler",
    "PolynomialSchduler",
    "LinearCosineScheduler",
    "ExponentialScheduler",
    "InverseTimeScheduler",
    "NaturalExpScheduler",
    "CustomScheduler",
]
