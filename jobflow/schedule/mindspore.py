"""MindSpore's ``nn.dynamic_lr`` lists and ``nn.learning_rate_schedule`` classes (what its code computes)."""

from jobflow._src.schedule.mindspore import CosineDecayLR as CosineDecayLR
from jobflow._src.schedule.mindspore import ExponentialDecayLR as ExponentialDecayLR
from jobflow._src.schedule.mindspore import InverseDecayLR as InverseDecayLR
from jobflow._src.schedule.mindspore import NaturalExpDecayLR as NaturalExpDecayLR
from jobflow._src.schedule.mindspore import PolynomialDecayLR as PolynomialDecayLR
from jobflow._src.schedule.mindspore import WarmUpLR as WarmUpLR
from jobflow._src.schedule.mindspore import cosine_decay_lr as cosine_decay_lr
from jobflow._src.schedule.mindspore import exponential_decay_lr as exponential_decay_lr
from jobflow._src.schedule.mindspore import inverse_decay_lr as inverse_decay_lr
from jobflow._src.schedule.mindspore import natural_exp_decay_lr as natural_exp_decay_lr
from jobflow._src.schedule.mindspore import piecewise_constant_lr as piecewise_constant_lr
from jobflow._src.schedule.mindspore import polynomial_decay_lr as polynomial_decay_lr
from jobflow._src.schedule.mindspore import warmup_lr as warmup_lr

__all__ = [
    "piecewise_constant_lr",
    "exponential_decay_lr",
    "natural_exp_decay_lr",
    "inverse_decay_lr",
    "cosine_decay_lr",
    "polynomial_decay_lr",
    "warmup_lr",
    "ExponentialDecayLR",
    "NaturalExpDecayLR",
    "InverseDecayLR",
    "CosineDecayLR",
    "PolynomialDecayLR",
    "WarmUpLR",
]
