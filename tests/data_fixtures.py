"""Small OFRecord datasets for the in-job data tests, generated on the fly."""

import cv2
import numpy as np

import jobflow as flow

SEQ = 8
VOCAB = 50


def bert_dataset(path, records=48, parts=2):
    """BERT-style int features: ``input_ids`` (SEQ,), ``input_mask`` (SEQ,) and
    ``next_sentence_labels`` () = whether the first id is < VOCAB / 2."""
    rng = np.random.default_rng(1)
    with flow.data.OFRecordWriter(str(path), part_num=parts, part_name_suffix_length=-1) as w:
        for _ in range(records):
            ids = rng.integers(0, VOCAB, SEQ).astype(np.int32)
            w.write(
                {
                    "input_ids": ids,
                    "input_mask": np.ones(SEQ, np.int32),
                    "next_sentence_labels": np.int32(ids[0] < VOCAB // 2),
                }
            )
    return str(path)


def image_dataset(path, records=32, parts=2):
    """ImageNet-style records: ``encoded`` (a JPEG of varying size, bright for label 1,
    dark for label 0) and ``class/label`` (int32)."""
    rng = np.random.default_rng(2)
    with flow.data.OFRecordWriter(str(path), part_num=parts, part_name_suffix_length=-1) as w:
        for i in range(records):
            label = i % 2
            h, wd = (int(v) for v in rng.integers(20, 40, 2))
            noise = rng.integers(0, 30, (h, wd, 3)).astype(np.uint8)
            img = noise + np.uint8(190 if label else 30)
            ok, enc = cv2.imencode(".jpg", img)
            assert ok
            w.write({"encoded": enc.tobytes(), "class/label": np.int32(label)})
    return str(path)


def bert_inputs(data_dir, batch_size=8, shuffle=True):
    """The data ops of a BERT-style job: ``(input_ids, next_sentence_labels)``."""
    rec = flow.data.ofrecord_reader(
        data_dir,
        batch_size=batch_size,
        data_part_num=2,
        random_shuffle=shuffle,
        shuffle_buffer_size=16,
        shuffle_after_epoch=shuffle,
    )
    ids = flow.data.OFRecordRawDecoder(rec, "input_ids", shape=(SEQ,), dtype=flow.int32)
    labels = flow.data.OFRecordRawDecoder(rec, "next_sentence_labels", shape=(), dtype=flow.int32)
    return ids, labels


def bert_model(ids, labels):
    table = flow.get_variable("embedding", (VOCAB, 16), initializer=flow.random_normal_initializer(0, 0.1))
    h = flow.math.reduce_mean(flow.gather(table, ids), axis=1)
    logits = flow.layers.dense(h, 2, name="cls")
    loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    flow.optimizer.Adam(flow.optimizer.PiecewiseConstantScheduler([], [0.05])).minimize(loss)
    return loss


def resnet_inputs(data_dir, batch_size=8):
    """The data ops of OneFlow-Benchmark's CNN programs (ofrecord_util.py): random-crop
    decode, resize, coin flip, crop-mirror-normalize; ``(images NCHW, labels)``."""
    rec = flow.data.ofrecord_reader(
        data_dir,
        batch_size=batch_size,
        data_part_num=2,
        part_name_suffix_length=-1,
        random_shuffle=True,
        shuffle_buffer_size=8,
        shuffle_after_epoch=True,
    )
    image = flow.data.OFRecordImageDecoderRandomCrop(rec, "encoded", color_space="RGB")
    labels = flow.data.OFRecordRawDecoder(rec, "class/label", shape=(), dtype=flow.int32)
    rsz, _, _ = flow.image.Resize(image, target_size=[16, 16])
    mirror = flow.random.CoinFlip(batch_size=batch_size)
    images = flow.image.CropMirrorNormalize(
        rsz,
        mirror_blob=mirror,
        color_space="RGB",
        crop_h=12,
        crop_w=12,
        mean=[123.68, 116.78, 103.94],
        std=[58.393, 57.12, 57.375],
        output_dtype=flow.float,
    )
    return images, labels


def resnet_model(images, labels):
    h = flow.layers.conv2d(images, 4, 3, padding="SAME", activation=flow.nn.relu, name="conv")
    h = flow.math.reduce_mean(h, axis=[2, 3])
    logits = flow.layers.dense(h, 2, name="fc")
    loss = flow.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    flow.optimizer.SGD(flow.optimizer.PiecewiseConstantScheduler([], [0.1]), momentum=0.9).minimize(loss)
    return loss
