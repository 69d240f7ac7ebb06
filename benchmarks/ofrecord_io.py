"""OFRecord I/O throughput: ``python -m benchmarks.ofrecord_io`` (not a test).

Measures, on a temporary dataset, records per second of :class:`OFRecordWriter`,
:class:`OFRecordSource` (in order / shuffled, ``validate`` on / off) and the decoders, and
the JPEG decode rate of the libraries jobflow could use (OpenCV, Pillow, simplejpeg: those
installed). Rounds are interleaved and the median is printed; load is printed with them.
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np

from jobflow._src.data import decoders
from jobflow._src.data.ofrecord import OFRecordWriter
from jobflow._src.data.source import OFRecordSource


def _jpeg(h: int = 375, w: int = 500) -> bytes:
    """A photo-like JPEG (gradients and noise) of ImageNet's median size, quality 90."""
    import cv2

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) % 256], -1) + rng.normal(0, 20, (h, w, 3))
    ok, enc = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return enc.tobytes()


def _decoders_available(data: bytes) -> dict[str, Callable[[], object]]:
    import cv2

    out: dict[str, Callable[[], object]] = {
        "opencv imdecode (BGR)": lambda: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    }
    try:
        from PIL import Image

        out["pillow (RGB)"] = lambda: np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        out["pillow (BGR copy)"] = lambda: np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[
            ..., ::-1
        ].copy()
    except ImportError:
        pass
    try:
        import simplejpeg

        out["simplejpeg (BGR)"] = lambda: simplejpeg.decode_jpeg(data, colorspace="BGR")
    except ImportError:
        pass
    return out


def _rate(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def _report(title: str, rates: dict[str, list[float]], unit: str) -> None:
    print(f"\n{title} (median of {len(next(iter(rates.values())))} interleaved rounds)")
    for name, values in rates.items():
        print(
            f"  {name:34s} {statistics.median(values):10.0f} {unit}  (min {min(values):.0f}, max {max(values):.0f})"
        )


def main(rounds: int = 5) -> None:
    print(f"load average before: {os.getloadavg()}")
    jpeg = _jpeg()
    rates: dict[str, list[float]] = {}
    fns = _decoders_available(jpeg)
    for _ in range(rounds):
        for name, fn in fns.items():
            rates.setdefault(name, []).append(_rate(fn, 50))
    _report(f"JPEG decode, 500x375, {len(jpeg)} bytes", rates, "images/s")

    with tempfile.TemporaryDirectory() as tmp:
        image_dir, bert_dir = os.path.join(tmp, "images"), os.path.join(tmp, "bert")
        rng = np.random.default_rng(0)
        bert = {
            k: rng.integers(0, 30522, 128).astype(np.int64)
            for k in ("input_ids", "input_mask", "segment_ids")
        }
        write: dict[str, list[float]] = {}
        for r in range(rounds):
            for name, d, rec, n in [
                ("images", image_dir, {"encoded": jpeg, "class/label": np.int32(3)}, 500),
                ("bert", bert_dir, bert, 2000),
            ]:
                start = time.perf_counter()
                with OFRecordWriter(d, part_num=4, overwrite=r > 0) as w:
                    for _ in range(n):
                        w.write(rec)
                write.setdefault(f"write {name}", []).append(n / (time.perf_counter() - start))
        _report("OFRecordWriter", write, "records/s")

        read: dict[str, list[float]] = {}
        cases = [
            ("images, in order, validate", image_dir, {}, 500),
            ("images, in order, no validate", image_dir, {"validate": False}, 500),
            (
                "images, shuffled (buffer 256)",
                image_dir,
                {"random_shuffle": True, "shuffle_buffer_size": 256},
                500,
            ),
            ("bert, in order, validate", bert_dir, {}, 2000),
            ("bert, shuffled (buffer 1024)", bert_dir, {"random_shuffle": True}, 2000),
        ]
        for _ in range(rounds):
            for name, d, kwargs, n in cases:
                source = OFRecordSource(d, 4, part_name_suffix_length=5, **kwargs)
                source.next_records(n)  # fills the buffer, opens files
                read.setdefault(name, []).append(_rate(lambda s=source: s.next_records(64), n // 64) * 64)
                source.close()
        _report("OFRecordSource.next_records(64)", read, "records/s")

        source = OFRecordSource(bert_dir, 4, part_name_suffix_length=5)
        bert_batch = source.next_records(64)
        image_batch = OFRecordSource(image_dir, 4, part_name_suffix_length=5).next_records(64)
        dec: dict[str, list[float]] = {}
        for _ in range(rounds):
            dec.setdefault("decode_raw int64[128] -> int32", []).append(
                _rate(lambda: decoders.decode_raw(bert_batch, "input_ids", (128,), np.int32), 10) * 64
            )
            dec.setdefault("decode_image (BGR)", []).append(
                _rate(lambda: decoders.decode_image(image_batch, "encoded"), 2) * 64
            )
        _report("decoders, batch of 64", dec, "records/s")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
