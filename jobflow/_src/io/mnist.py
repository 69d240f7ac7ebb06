"""``flow.data.load_mnist``: OneFlow's MNIST loader (``mnist.npz``, batched numpy arrays).

The file is ``<out_dir>/mnist.npz`` with the arrays ``x_train`` (uint8, ``(60000, 28,
28)``), ``y_train``, ``x_test``, ``y_test``, as OneFlow published it. A file already
there is used without any network access; an absent one is downloaded from ``url`` (with
the standard library) and written atomically, so an interrupted download leaves nothing
behind. Offline and absent: a ``FileNotFoundError`` that says where to put the file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request

import numpy as np

from jobflow._src.io.atomic import write_atomically

__all__ = ["load_mnist", "MNIST_URL", "MNIST_SHA256"]

MNIST_URL = "https://oneflow-public.oss-cn-beijing.aliyuncs.com/datasets/mnist.npz"
MNIST_SHA256 = "63d4344077849053dc3036b247fa012b2b381de53fd055a66b539dffd76cf08e"
_KEYS = ("x_train", "y_train", "x_test", "y_test")


def sha256_of(path: str) -> str:
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, path: str, timeout: float = 60.0) -> None:
    """Downloads ``url`` to ``path`` atomically; FileNotFoundError when it cannot."""

    def write(tmp: str) -> None:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as f:
            shutil.copyfileobj(resp, f)

    print(f"Downloading {url} to {path} ...")
    try:
        write_atomically(path, write, overwrite=False)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise FileNotFoundError(
            f"flow.data.load_mnist: {path} does not exist and downloading it from {url} failed "
            f"({e}); put OneFlow's mnist.npz there (or pass out_dir=<its directory>)"
        ) from None


def get_mnist_file(sha256, url: str, out_dir: str) -> str:
    """``<out_dir>/mnist.npz``, downloaded when absent, checked against ``sha256`` (a
    false value skips the check)."""
    path = os.path.join(os.fspath(out_dir), "mnist.npz")
    if not os.path.isfile(path):
        _download(url, path)
    if sha256 and sha256_of(path) != sha256:
        raise ValueError(f"sha256 verification of {path} failed; remove it and try again")
    return path


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int, data_format: str, split: str):
    """Images scaled to [0, 1] and int32 labels, reshaped into batches (OneFlow's layout)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"flow.data.load_mnist: {split}_batch_size must be an int >= 1; got {batch_size!r}")
    if len(x) % batch_size:
        raise ValueError(
            f"flow.data.load_mnist: the {len(x)} {split} images do not split into batches of "
            f"{batch_size}; choose a {split}_batch_size that divides {len(x)}"
        )
    x = x.astype(np.float32) / 255.0
    shape = (1, x.shape[1], x.shape[2]) if data_format == "NCHW" else (x.shape[1], x.shape[2], 1)
    return x.reshape((-1, batch_size, *shape)), y.astype(np.int32).reshape((-1, batch_size))


def load_mnist(
    train_batch_size=100,
    test_batch_size=100,
    data_format="NCHW",
    url=MNIST_URL,
    hash_check=MNIST_SHA256,
    out_dir=".",
):
    """Loads MNIST in batches: ``(train_images, train_labels), (test_images, test_labels)``.

    Images are float32 in [0, 1], shaped ``(num_batches, batch, 1, 28, 28)`` for
    ``data_format="NCHW"`` and ``(num_batches, batch, 28, 28, 1)`` otherwise; labels are
    int32 ``(num_batches, batch)``. ``out_dir/mnist.npz`` is downloaded from ``url`` when
    absent; ``hash_check`` is its expected SHA-256 (OneFlow's file by default; a false
    value skips the check). OneFlow's signature and results.
    """
    if data_format not in ("NCHW", "NHWC"):
        raise ValueError(f"flow.data.load_mnist: data_format must be 'NCHW' or 'NHWC'; got {data_format!r}")
    path = get_mnist_file(hash_check, url, out_dir)
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in _KEYS if k not in f.files]
        if missing:
            raise ValueError(f"{path} is not OneFlow's mnist.npz: it lacks {missing}")
        x_train, y_train, x_test, y_test = (f[k] for k in _KEYS)
    train = _batches(x_train, y_train, train_batch_size, data_format, "train")
    test = _batches(x_test, y_test, test_batch_size, data_format, "test")
    return train, test
