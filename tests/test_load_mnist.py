"""``flow.data.load_mnist``: OneFlow's signature and batched layout, from a small
generated ``mnist.npz``; downloads from a local HTTP server (no internet in tests)."""

import functools
import http.server
import os
import threading

import numpy as np
import pytest

import jobflow as flow
from jobflow._src.io.mnist import sha256_of


def _write_npz(directory, n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    os.makedirs(directory, exist_ok=True)
    np.savez(os.path.join(directory, "mnist.npz"), **arrays)
    return arrays


def test_an_existing_file_is_loaded_in_oneflows_layout(tmp_path):
    a = _write_npz(tmp_path)
    (xs, ys), (xt, yt) = flow.data.load_mnist(
        5, 2, hash_check=False, out_dir=str(tmp_path), url="http://127.0.0.1:9/x"
    )
    assert xs.shape == (4, 5, 1, 28, 28) and xs.dtype == np.float32
    assert ys.shape == (4, 5) and ys.dtype == np.int32
    assert xt.shape == (5, 2, 1, 28, 28) and yt.shape == (5, 2)
    np.testing.assert_allclose(xs[1, 2, 0], a["x_train"][7] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(yt.ravel(), a["y_test"])
    (xs, _), _ = flow.data.load_mnist(10, 10, data_format="NHWC", hash_check=False, out_dir=str(tmp_path))
    assert xs.shape == (2, 10, 28, 28, 1)


def test_the_hash_is_checked(tmp_path):
    _write_npz(tmp_path)
    good = sha256_of(str(tmp_path / "mnist.npz"))
    flow.data.load_mnist(10, 10, hash_check=good, out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="sha256 verification"):
        flow.data.load_mnist(10, 10, out_dir=str(tmp_path))  # OneFlow's hash of the real file


def test_offline_and_absent_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist and downloading it from http://127.0.0.1:9"):
        flow.data.load_mnist(out_dir=str(tmp_path / "none"), url="http://127.0.0.1:9/mnist.npz")
    assert not os.path.exists(tmp_path / "none" / "mnist.npz")


def test_an_absent_file_is_downloaded_once_and_cached(tmp_path):
    served = tmp_path / "server"
    a = _write_npz(served)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/mnist.npz"
        try:
            (xs, _), _ = flow.data.load_mnist(
                20, 10, url=url, hash_check=False, out_dir=str(tmp_path / "cache")
            )
        finally:
            server.shutdown()
    np.testing.assert_allclose(xs[0, 3, 0], a["x_train"][3] / 255.0, rtol=1e-6)
    # the copy is used from now on, without the server
    (xs, _), _ = flow.data.load_mnist(
        20, 10, url="http://127.0.0.1:9/x", hash_check=False, out_dir=str(tmp_path / "cache")
    )
    assert xs.shape == (1, 20, 1, 28, 28)


def test_bad_arguments(tmp_path):
    _write_npz(tmp_path)
    with pytest.raises(ValueError, match="do not split into batches of 3"):
        flow.data.load_mnist(3, 10, hash_check=False, out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="data_format must be"):
        flow.data.load_mnist(data_format="CHW", hash_check=False, out_dir=str(tmp_path))
