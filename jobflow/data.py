"""``flow.data``: data loading (``load_mnist``; the OFRecord pipeline is issue 13)."""

from jobflow._src.io.mnist import load_mnist as load_mnist

__all__ = ["load_mnist"]
