"""Random ops inside job bodies (OneFlow's ``flow.random``), drawn from the job's
random stream."""

from jobflow._src.data.ops import coin_flip as CoinFlip
from jobflow._src.data.ops import coin_flip as coin_flip
from jobflow._src.ops.random_ops import bernoulli as bernoulli
from jobflow._src.ops.random_ops import (
    generate_random_batch_permutation_indices as generate_random_batch_permutation_indices,
)
from jobflow._src.ops.random_ops import shuffle as shuffle

__all__ = [
    "bernoulli",
    "coin_flip",
    "CoinFlip",
    "shuffle",
    "generate_random_batch_permutation_indices",
]
