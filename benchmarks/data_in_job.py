"""In-job data (docs/data.md): what reading inside the job costs a call, and whether the
host pipeline keeps up with a step.

1. Per-call overhead: a job whose batch comes from ``flow.data.decode_random`` against the
   same job fed the same batches, preloaded, through a placeholder (tiny model: the
   difference is the hidden-input path: take the prefetched batch, hand it to the step,
   move the position).
2. The ResNet-style chain of OneFlow-Benchmark (OFRecord JPEGs -> random-crop decode ->
   resize -> coin flip -> crop-mirror-normalize, labels by the raw decoder): images per
   second of the pipeline alone (``flow.data.iterate``) with 1 and 2 decode threads, and
   train steps per second of a small CNN reading in the job against the same CNN fed
   preloaded batches.

Run: ``PYTHONPATH=. python benchmarks/data_in_job.py [--quick]``.
"""

import os
import sys
import tempfile
import time

import cv2
import numpy as np

import jobflow as flow
import jobflow.typing as tp

MEAN = [123.68, 116.779, 103.939]
STD = [58.393, 57.12, 57.375]


def _timed(fn, calls: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def overhead(calls: int) -> dict:
    def model(x):
        w = flow.get_variable("w", (32, 1), initializer=flow.zeros_initializer())
        loss = flow.math.reduce_mean(flow.math.square(flow.matmul(x, w) - 1.0))
        flow.optimizer.SGD(flow.optimizer.PiecewiseConstantScheduler([], [0.01])).minimize(loss)
        return loss

    flow.clear_default_session()

    @flow.global_function(type="train")
    def in_job() -> tp.Callback[tp.Numpy]:
        return model(flow.data.decode_random((32,), flow.float32, batch_size=8))

    @flow.global_function(type="train")
    def fed(x: tp.Numpy.Placeholder((8, 32))) -> tp.Callback[tp.Numpy]:
        return model(x)

    batch = np.random.default_rng(0).random((8, 32), np.float32)
    rounds = {"in_job": [], "fed": []}
    for _ in range(5):
        rounds["in_job"].append(_timed(lambda: in_job(), calls))
        flow.sync_default_session()
        rounds["fed"].append(_timed(lambda: fed(batch), calls))
        flow.sync_default_session()
    return {k: float(np.median(v)) * 1e6 for k, v in rounds.items()}


def make_images(root: str, n: int) -> str:
    rng = np.random.default_rng(0)
    data_dir = os.path.join(root, "images")
    with flow.data.OFRecordWriter(data_dir, part_num=4, part_name_suffix_length=-1) as w:
        for i in range(n):
            h, wd = (int(v) for v in rng.integers(96, 200, 2))
            small = rng.integers(0, 256, (h // 16 + 2, wd // 16 + 2, 3), dtype=np.uint8)
            image = cv2.resize(small, (wd, h), interpolation=cv2.INTER_CUBIC)
            ok, enc = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            w.write({"encoded": enc.tobytes(), "class/label": np.int32(i % 10)})
    return data_dir


def resnet_inputs(data_dir: str, batch: int, size: int):
    rec = flow.data.ofrecord_reader(data_dir, batch_size=batch, data_part_num=4, random_shuffle=True)
    image = flow.data.OFRecordImageDecoderRandomCrop(rec, "encoded", color_space="RGB")
    labels = flow.data.OFRecordRawDecoder(rec, "class/label", shape=(), dtype=flow.int32)
    rsz, _, _ = flow.image.Resize(image, target_size=[size, size])
    images = flow.image.CropMirrorNormalize(
        rsz, flow.random.CoinFlip(batch_size=batch), color_space="RGB", mean=MEAN, std=STD
    )
    return images, labels


def cnn(images, labels):
    h = flow.layers.conv2d(images, 16, 3, strides=2, padding="SAME", activation=flow.nn.relu, name="c1")
    h = flow.layers.conv2d(h, 32, 3, strides=2, padding="SAME", activation=flow.nn.relu, name="c2")
    logits = flow.layers.dense(flow.math.reduce_mean(h, axis=[2, 3]), 10, name="fc")
    loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    flow.optimizer.SGD(flow.optimizer.PiecewiseConstantScheduler([], [0.01]), momentum=0.9).minimize(loss)
    return loss


def chain(data_dir: str, batch: int, size: int, steps: int) -> dict:
    out = {}
    for workers in (1, 2):
        it = flow.data.iterate(resnet_inputs(data_dir, batch, size), num_workers=workers, prefetch=4)
        next(it)
        start = time.perf_counter()
        for _ in range(steps):
            next(it)
        out[f"pipeline_images_per_s_{workers}_threads"] = batch * steps / (time.perf_counter() - start)
        it.close()
    flow.clear_default_session()

    @flow.global_function(type="train")
    def in_job() -> tp.Callback[tp.Numpy]:
        return cnn(*resnet_inputs(data_dir, batch, size))

    @flow.global_function(type="train")
    def fed(
        x: tp.Numpy.Placeholder((batch, 3, size, size)), y: tp.Numpy.Placeholder((batch,), flow.int32)
    ) -> tp.Callback[tp.Numpy]:
        return cnn(x, y)

    it = flow.data.iterate(resnet_inputs(data_dir, batch, size))
    preloaded = [next(it) for _ in range(8)]
    it.close()
    step_in_job = _timed(lambda: in_job(), steps)
    flow.sync_default_session()
    step_fed = _timed(lambda: fed(*preloaded[np.random.randint(8)]), steps)
    flow.sync_default_session()
    out["train_steps_per_s_in_job"] = 1 / step_in_job
    out["train_steps_per_s_preloaded"] = 1 / step_fed
    return out


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    o = overhead(50 if quick else 300)
    print(f"per call (us): in-job decode_random {o['in_job']:.0f}, preloaded placeholder {o['fed']:.0f}")
    with tempfile.TemporaryDirectory() as root:
        data_dir = make_images(root, 128 if quick else 512)
        for k, v in chain(data_dir, 32, 64, 10 if quick else 40).items():
            print(f"{k}: {v:.1f}")


if __name__ == "__main__":
    main()
