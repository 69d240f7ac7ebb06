"""Hugging Face transformers' ``get_scheduler`` names and formulas."""

from jobflow._src.schedule.transformers import SCHEDULER_NAMES as SCHEDULER_NAMES
from jobflow._src.schedule.transformers import TransformersSchedule as TransformersSchedule
from jobflow._src.schedule.transformers import get_constant_schedule as get_constant_schedule
from jobflow._src.schedule.transformers import (
    get_constant_schedule_with_warmup as get_constant_schedule_with_warmup,
)
from jobflow._src.schedule.transformers import (
    get_cosine_schedule_with_warmup as get_cosine_schedule_with_warmup,
)
from jobflow._src.schedule.transformers import (
    get_cosine_with_hard_restarts_schedule_with_warmup as get_cosine_with_hard_restarts_schedule_with_warmup,
)
from jobflow._src.schedule.transformers import (
    get_cosine_with_min_lr_schedule_with_warmup as get_cosine_with_min_lr_schedule_with_warmup,
)
from jobflow._src.schedule.transformers import get_inverse_sqrt_schedule as get_inverse_sqrt_schedule
from jobflow._src.schedule.transformers import (
    get_linear_schedule_with_warmup as get_linear_schedule_with_warmup,
)
from jobflow._src.schedule.transformers import (
    get_polynomial_decay_schedule_with_warmup as get_polynomial_decay_schedule_with_warmup,
)
from jobflow._src.schedule.transformers import (
    get_reduce_on_plateau_schedule as get_reduce_on_plateau_schedule,
)
from jobflow._src.schedule.transformers import get_scheduler as get_scheduler
from jobflow._src.schedule.transformers import get_wsd_schedule as get_wsd_schedule

__all__ = [
    "get_scheduler",
    "get_constant_schedule",
    "get_constant_schedule_with_warmup",
    "get_linear_schedule_with_warmup",
    "get_cosine_schedule_with_warmup",
    "get_cosine_with_hard_restarts_schedule_with_warmup",
    "get_polynomial_decay_schedule_with_warmup",
    "get_inverse_sqrt_schedule",
    "get_cosine_with_min_lr_schedule_with_warmup",
    "get_wsd_schedule",
    "get_reduce_on_plateau_schedule",
    "TransformersSchedule",
    "SCHEDULER_NAMES",
]
