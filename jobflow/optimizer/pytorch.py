"""Adam and AdamW with PyTorch's numbers (``torch.optim.Adam`` / ``AdamW``).

``flow.optimizer.Adam`` computes what OneFlow's legacy kernel computes (bias correction
off by default); ``flow.optimizer.pytorch.Adam`` takes the same arguments and computes
what PyTorch computes. docs/optimizers.md shows the difference with numbers.
"""

from jobflow._src.optimizer.pytorch import Adam as Adam
from jobflow._src.optimizer.pytorch import AdamW as AdamW

__all__ = ["Adam", "AdamW"]
