"""The data pipeline: decode + augment throughput against a PyTorch ``DataLoader`` over the
same JPEGs with the same transforms, and training throughput of a small CNN whose job reads
OFRecord against the same job fed preloaded numpy.

The data set is made here, in a temporary directory: random smooth-with-noise JPEGs of
ImageNet-like varied sizes, written once as files (for the ``DataLoader``) and once as
OFRecord parts (for jobflow). Both sides decode with OpenCV and do OneFlow-Benchmark's
ResNet-50 training chain: a random crop (area 8-100 %, aspect ratio 3/4-4/3), a resize to
224x224 (area averaging when shrinking, bilinear when growing), a coin-flip mirror, and a
per-channel normalization to float32 NCHW.
"""

import os
import queue
import tempfile
import threading
import time

import cv2
import numpy as np

from benchmarks import _harness as h
from jobflow._src.data import image_ops

MEAN = (123.68, 116.779, 103.939)
STD = (58.393, 57.12, 57.375)
WORKERS = 2  # the machine's cores: the DataLoader's worker processes and jobflow's threads


# ----------------------------------------------------------------------------- the data set


def _jpeg(rng: np.random.Generator, height: int, width: int) -> bytes:
    """A JPEG (quality 90) of smooth random colour blobs with sensor-like noise: it
    compresses and decodes like a photo, unlike white noise."""
    small = rng.integers(0, 256, (height // 24 + 2, width // 24 + 2, 3), dtype=np.uint8)
    base = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    image = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return data.tobytes()


def make_dataset(root: str, n: int, sizes: tuple[int, int], parts: int = 4, seed: int = 0) -> tuple:
    """``n`` JPEGs with sides in ``sizes``: files ``root/jpeg/*.jpg`` and OFRecord parts
    ``root/ofrecord/part-0000k`` (features ``encoded`` and ``class/label``). Returns the
    file paths and the labels."""
    from jobflow._src.data.ofrecord import OFRecordWriter

    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "jpeg"))
    paths, labels = [], rng.integers(0, 10, n).astype(np.int32)
    with OFRecordWriter(os.path.join(root, "ofrecord"), part_num=parts) as writer:
        for i in range(n):
            data = _jpeg(rng, *rng.integers(sizes[0], sizes[1] + 1, 2))
            paths.append(os.path.join(root, "jpeg", f"{i:05d}.jpg"))
            with open(paths[-1], "wb") as f:
                f.write(data)
            writer.write({"encoded": data, "class/label": labels[i]})
    return paths, labels


# ----------------------------------------------------------------------------- PyTorch


class JpegFiles:
    """A map-style PyTorch dataset (``__len__`` / ``__getitem__``): reads a file, decodes it
    with OpenCV and applies the same chain per image, as a PyTorch user writes it: the crop
    window drawn by the same rule, OpenCV's resize and flip, then torchvision's ``ToTensor`` /
    ``Normalize`` arithmetic in torch ops. At module level so that spawned workers unpickle it."""

    def __init__(self, paths, labels, size: int):
        self.paths, self.labels, self.size = list(paths), np.asarray(labels), size
        self.rng = self.mean = self.std = None

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        import torch

        if self.rng is None:  # one stream per worker process
            self.rng = np.random.default_rng(torch.initial_seed() % 2**32)
            self.mean = torch.tensor(MEAN, dtype=torch.float32)[:, None, None]
            self.std = torch.tensor(STD, dtype=torch.float32)[:, None, None]
        with open(self.paths[i], "rb") as f:
            image = cv2.imdecode(np.frombuffer(f.read(), np.uint8), cv2.IMREAD_COLOR)
        y, x, hh, ww = image_ops.random_crop_window(image.shape[0], image.shape[1], self.rng)
        size = self.size
        flag = cv2.INTER_LINEAR if size * size >= hh * ww else cv2.INTER_AREA
        image = cv2.resize(image[y : y + hh, x : x + ww], (size, size), interpolation=flag)
        if self.rng.random() < 0.5:
            image = cv2.flip(image, 1)
        chw = torch.from_numpy(image).permute(2, 0, 1).float()
        return chw.sub_(self.mean).div_(self.std), int(self.labels[i])


def _one_cv2_thread(_worker_id):
    """OpenCV's own thread pool off in each worker process: 2 processes x 2 OpenCV threads
    oversubscribe 2 cores (measured: ~15 % more images/s without it)."""
    cv2.setNumThreads(1)


class TorchLoader:
    """One epoch of a ``DataLoader`` (shuffled, ``WORKERS`` persistent worker processes,
    started once: the first epoch, a warm-up, pays for it)."""

    def __init__(self, paths, labels, size: int, batch: int):
        import torch

        torch.set_num_threads(1)
        self.loader = torch.utils.data.DataLoader(
            JpegFiles(paths, labels, size),
            batch_size=batch,
            shuffle=True,
            num_workers=WORKERS,
            persistent_workers=True,
            drop_last=True,
            worker_init_fn=_one_cv2_thread,
            multiprocessing_context="spawn",  # forking a process that runs JAX's threads can deadlock
        )

    def epoch(self) -> int:
        images = 0
        for x, _ in self.loader:
            images += x.shape[0]
        return images


# ----------------------------------------------------------------------------- jobflow


def augment_batch(records, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """OneFlow-Benchmark's training chain on one batch of serialized OFRecords:
    ``OFRecordImageDecoderRandomCrop -> image.Resize -> random.CoinFlip ->
    image.CropMirrorNormalize`` (and ``OFRecordRawDecoder`` for the labels)."""
    from jobflow._src.data import decoders

    messages = decoders.parse_batch(records)
    # OFRecordImageDecoderRandomCrop: decode, then crop to windows drawn for the whole batch
    images = image_ops.random_crop(decoders.decode_image(messages, "encoded"), rng=rng)
    labels = decoders.decode_raw(messages, "class/label", shape=(), dtype=np.int32)
    resized, _, _ = image_ops.resize(images, target_size=(size, size))
    mirror = image_ops.coin_flip(len(records), rng=rng)
    return image_ops.crop_mirror_normalize(resized, mirror, mean=MEAN, std=STD), labels


class ThreadedChain:
    """The chain run as jobflow's pipeline runs it: a reader hands batches of records to
    ``WORKERS`` threads, each computing whole batches into a bounded queue."""

    def __init__(self, data_dir: str, parts: int, size: int, batch: int, seed: int = 0):
        from jobflow._src.data.source import OFRecordSource

        self.source = OFRecordSource(
            data_dir,
            parts,
            part_name_suffix_length=5,
            random_shuffle=True,
            shuffle_after_epoch=True,
            seed=seed,
        )
        self.size, self.batch, self.seed, self.calls, self.waited = size, batch, seed, 0, 0.0
        self.lock = threading.Lock()

    def batches(self, count: int):
        """Yields ``count`` batches computed by the worker threads (started here, joined
        at the end, so nothing is computed ahead between measurements)."""
        out: queue.Queue = queue.Queue(maxsize=2 * WORKERS)
        todo = iter(range(count))
        self.calls += 1

        def work():
            while True:
                with self.lock:
                    index = next(todo, None)
                    records = None if index is None else self.source.next_records(self.batch)
                if index is None:
                    return
                rng = np.random.default_rng((self.seed, self.calls, index))
                out.put(augment_batch(records, self.size, rng))

        threads = [threading.Thread(target=work, daemon=True) for _ in range(WORKERS)]
        for t in threads:
            t.start()
        for _ in range(count):
            start = time.perf_counter()
            batch = out.get()
            self.waited += time.perf_counter() - start  # the consumer stalled on the data
            yield batch
        for t in threads:
            t.join()

    def epoch(self, count: int) -> int:
        return sum(x.shape[0] for x, _ in self.batches(count))


# ----------------------------------------------------------------------------- the in-job pipeline


def oneflow_inputs(data_dir: str, parts: int, batch: int, size: int):
    """OneFlow-Benchmark's ``load_imagenet_for_training`` (ofrecord_util.py) at ``size``:
    the data ops of a job body, or, outside a job, nodes for ``flow.data.iterate``."""
    import jobflow as flow

    rec = flow.data.ofrecord_reader(
        data_dir,
        batch_size=batch,
        data_part_num=parts,
        part_name_suffix_length=5,
        random_shuffle=True,
        shuffle_after_epoch=True,
    )
    labels = flow.data.OFRecordRawDecoder(rec, "class/label", shape=(), dtype=flow.int32)
    image = flow.data.OFRecordImageDecoderRandomCrop(rec, "encoded")
    resized, _, _ = flow.image.Resize(image, target_size=[size, size])
    mirror = flow.random.CoinFlip(batch_size=batch)
    images = flow.image.CropMirrorNormalize(resized, mirror_blob=mirror, mean=list(MEAN), std=list(STD))
    return images, labels


class JobflowPipeline:
    """One epoch of ``flow.data.iterate`` over :func:`oneflow_inputs` (the pipeline a job's
    data ops run in: a reader thread and ``WORKERS`` threads); a fresh iterator per epoch,
    closed at its end, so nothing is computed ahead between measurements."""

    def __init__(self, data_dir: str, parts: int, batch: int, size: int):
        self.nodes = oneflow_inputs(data_dir, parts, batch, size)
        self.epochs = 0

    def epoch(self, count: int) -> int:
        import jobflow as flow

        self.epochs += 1
        images = 0
        with flow.data.iterate(self.nodes, seed=self.epochs, num_workers=WORKERS) as it:
            for _ in range(count):
                images += next(it)[0].shape[0]
        return images


# ----------------------------------------------------------------------------- the sections


def _interleave(contenders: dict, rounds: int, warmup: int = 1) -> dict:
    """``{name: [per-round rate]}``: each round runs every contender once (``fn() ->
    items``), the order rotating; the first ``warmup`` rounds are not kept."""
    names = list(contenders)
    rates: dict = {name: [] for name in names}
    for r in range(rounds + warmup):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            items = contenders[name]()
            if r >= warmup:
                rates[name].append(items / (time.perf_counter() - start))
    return rates


def _rows(benchmark: str, rates: dict, reference: str) -> list:
    return [
        {"benchmark": benchmark, "implementation": name, "value": h.median(rates[name]), "unit": "images/s",
         "ratio": h.median([a / b for a, b in zip(rates[name], rates[reference])]), "spread": h.spread(rates[name])}
        for name in rates
    ]  # fmt: skip


def _throughput_rows(scale) -> tuple[list, list]:
    n = 512 if scale["rounds"] < 5 else 1536
    batch, size, parts = 32, 224, 4
    rounds = max(3, scale["rounds"] // 2)
    with tempfile.TemporaryDirectory() as root:
        paths, labels = make_dataset(root, n, (200, 400), parts=parts)
        kib = np.mean([os.path.getsize(p) for p in paths]) / 1024
        records = os.path.join(root, "ofrecord")
        pipeline = JobflowPipeline(records, parts, batch, size)
        chain = ThreadedChain(records, parts, size, batch)
        torch_loader = TorchLoader(paths, labels, size, batch)
        reference = "PyTorch DataLoader (2 worker processes)"
        rates = _interleave(
            {
                "jobflow: the job's data pipeline (2 threads)": lambda: pipeline.epoch(n // batch),
                "jobflow: image_ops chain, hand-threaded (2 threads)": lambda: chain.epoch(n // batch),
                reference: torch_loader.epoch,
            },
            rounds,
        )
    notes = [
        f"Decode + augment: {n} JPEGs of 200-400 px a side (mean {kib:.0f} KiB) to {size}x{size} float32 NCHW, "
        f"batch {batch}, one epoch per round, {rounds} interleaved rounds after a warm-up round; ratio: median "
        "of per-round images/s / the DataLoader's (target >= 1.0).",
        "The DataLoader's Dataset reads each file, decodes it with OpenCV, crops a window drawn by the same "
        "rule, resizes with the same OpenCV flag, flips, and normalizes with torch ops (torchvision's "
        "arithmetic); its workers run OpenCV single-threaded (faster here).",
    ]
    return _rows(f"decode + augment to {size}x{size}", rates, reference), notes


def _cnn(x):
    """A LeNet-sized CNN: two 5x5 conv + max-pool blocks (16 and 32 channels), a 64-unit
    dense layer, 10 classes."""
    import jobflow as flow

    init = flow.truncated_normal(0.1)
    h = flow.layers.conv2d(
        x, 16, 5, padding="SAME", activation=flow.nn.relu, kernel_initializer=init, name="conv1"
    )
    h = flow.nn.max_pool2d(h, ksize=2, strides=2, padding="SAME")
    h = flow.layers.conv2d(
        h, 32, 5, padding="SAME", activation=flow.nn.relu, kernel_initializer=init, name="conv2"
    )
    h = flow.nn.max_pool2d(h, ksize=2, strides=2, padding="SAME")
    h = flow.reshape(h, [h.shape[0], -1])
    h = flow.layers.dense(h, 64, activation=flow.nn.relu, kernel_initializer=init, name="dense1")
    return flow.layers.dense(h, 10, kernel_initializer=init, name="dense2")


def _cnn_jobs(data_dir: str, parts: int, batch: int, size: int):
    """The same training job twice: reading OFRecord in its body, and fed numpy."""
    import jobflow as flow
    import jobflow.typing as tp

    flow.clear_default_session()
    flow.config.seed(0)

    def train(images, labels):
        loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, _cnn(images))
        flow.optimizer.SGD(0.01, momentum=0.9).minimize(loss)
        return loss

    @flow.global_function(type="train")
    def from_records() -> tp.Numpy:
        return train(*oneflow_inputs(data_dir, parts, batch, size))

    @flow.global_function(type="train")
    def from_numpy(
        images: tp.Numpy.Placeholder((batch, 3, size, size)),
        labels: tp.Numpy.Placeholder((batch,), dtype=flow.int32),
    ) -> tp.Numpy:
        return train(images, labels)

    return from_records, from_numpy


def _training_rows(scale) -> tuple[list, list]:
    batch, size, n, parts = 64, 32, 2048, 4
    steps, rounds = (6, 5) if scale["rounds"] < 5 else (8, 15)
    with tempfile.TemporaryDirectory() as root:
        make_dataset(root, n, (32, 48), parts=parts, seed=1)
        records = os.path.join(root, "ofrecord")
        preloaded = list(ThreadedChain(records, parts, size, batch, seed=1).batches(8))  # decoded up front
        from_records, from_numpy = _cnn_jobs(records, parts, batch, size)
        for x, y in preloaded[:2]:
            from_records()  # compile both
            from_numpy(x, y)

        def read_records():
            for _ in range(steps):
                from_records()
            return steps * batch

        def fed_numpy():
            for i in range(steps):
                from_numpy(*preloaded[i % len(preloaded)])
            return steps * batch

        reference = "the same job fed preloaded numpy"
        rates = _interleave(
            {"the job reads OFRecord (in-job data ops)": read_records, reference: fed_numpy}, rounds
        )
    notes = [
        f"Training: {n} JPEGs of 32-48 px a side as OFRecord; the job's body reads them with OneFlow-Benchmark's "
        f"ops (random-crop decode, Resize to {size}x{size}, CoinFlip, CropMirrorNormalize) and trains a "
        f"LeNet-sized CNN, batch {batch}; {steps} steps per round, {rounds} interleaved rounds; ratio: median "
        "of per-round images/s / the preloaded job's (target >= 0.95). Both run on the same 2 cores: the "
        "decoding threads' CPU is taken from XLA's."
    ]
    return _rows(f"train a small CNN, {size}x{size}, batch {batch}", rates, reference), notes


def data_pipeline(scale) -> dict:
    """Decode + augment throughput: jobflow's data pipeline vs a PyTorch DataLoader; and a
    small CNN whose job reads OFRecord vs the same job fed preloaded numpy."""
    rows, notes = _throughput_rows(scale)
    train_rows, train_notes = _training_rows(scale)
    return {
        "title": "Data pipeline",
        "columns": ["benchmark", "implementation", "value", "unit", "ratio", "spread"],
        "rows": rows + train_rows,
        "notes": notes + train_notes,
    }
