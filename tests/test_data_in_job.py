"""In-job data (issue 13): jobs without placeholders that read their batches with
``flow.data`` ops; each call takes the next batch (docs/data.md)."""

import numpy as np
import pytest

import jobflow as flow
import jobflow.typing as tp
from jobflow.errors import ArgumentError, DataError
from tests import data_fixtures as fx


def _sgd(lr=0.1):
    return flow.optimizer.SGD(flow.optimizer.PiecewiseConstantScheduler([], [lr]))


def _placement(n):
    return flow.function_config().default_placement_scope(flow.scope.placement("cpu", f"0:0-{n - 1}"))


# ----------------------------------------------------------------------- decode_random


W_TRUE = np.array([[1.5], [-2.0], [0.5]], np.float32)


def _regression(x):
    y = flow.matmul(x, flow.constant(W_TRUE))
    w = flow.get_variable("w", (3, 1), initializer=flow.zeros_initializer())
    loss = flow.math.reduce_mean(flow.math.square(flow.matmul(x, w) - y))
    _sgd(0.5).minimize(loss)
    return loss


def _uniform_x():
    return flow.data.decode_random(
        (3,), flow.float32, batch_size=16, initializer=flow.random_uniform_initializer(-1, 1)
    )


def test_decode_random_job_trains_like_the_same_batches_fed_to_a_placeholder():
    @flow.global_function(type="train")
    def regress() -> tp.Numpy:
        return _regression(_uniform_x())

    losses = [float(regress()) for _ in range(100)]
    w_data = flow.get_all_variables()["w"]
    assert np.mean(losses[-10:]) < 0.01 * losses[0]
    np.testing.assert_allclose(w_data, W_TRUE, atol=0.05)

    flow.clear_default_session()
    flow.config.seed(0)

    @flow.global_function(type="train")
    def fed(x: tp.Numpy.Placeholder((16, 3))) -> tp.Numpy:
        return _regression(x)

    batches = flow.data.iterate(_uniform_x())  # the same seed: the same batches
    assert [float(fed(next(batches))) for _ in range(100)] == losses
    np.testing.assert_array_equal(flow.get_all_variables()["w"], w_data)


def test_decode_random_batches_follow_the_initializer():
    @flow.global_function(type="predict")
    def normal() -> tp.Numpy:
        return flow.data.decode_random(
            (64,), flow.float32, batch_size=32, initializer=flow.random_normal_initializer(2.0, 0.5)
        )

    @flow.global_function(type="predict")
    def uniform() -> tp.Numpy:
        return flow.data.decode_random((8,), flow.float32, batch_size=4)  # OneFlow's default: U(0, 1)

    batches = [normal() for _ in range(10)]
    assert all(b.shape == (32, 64) and b.dtype == np.float32 for b in batches)
    assert not np.array_equal(batches[0], batches[1])  # each call takes the next batch
    x = np.concatenate(batches)
    assert abs(x.mean() - 2.0) < 0.02 and abs(x.std() - 0.5) < 0.01  # 20480 draws
    u = np.concatenate([uniform() for _ in range(20)])
    assert u.min() >= 0.0 and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.05


def test_decode_random_int_dtype_and_seed():
    def define():
        @flow.global_function(type="predict")
        def ids() -> tp.Numpy:
            return flow.data.decode_random(
                (5,), flow.int32, batch_size=4, initializer=flow.random_uniform_initializer(0, 10)
            )

        return ids

    flow.config.seed(7)
    a = [define()() for _ in range(3)]
    assert a[0].dtype == np.int32 and a[0].min() >= 0 and a[0].max() < 10
    flow.clear_default_session()
    flow.config.seed(7)
    b = [define()() for _ in range(3)]
    flow.clear_default_session()
    flow.config.seed(8)
    c = define()()
    assert all(np.array_equal(x, y) for x, y in zip(a, b))  # same seed, same batches
    assert not np.array_equal(a[0], c)


def test_data_outputs_and_placeholders_together():
    @flow.global_function(type="predict")
    def mixed(scale: tp.Numpy.Placeholder((1, 1))) -> tp.Numpy:
        x = flow.data.decode_random((2,), flow.float32, batch_size=3)
        return x * scale

    first = mixed(np.ones((1, 1), np.float32))
    second = mixed(np.full((1, 1), 10.0, np.float32))
    it = flow.data.iterate(flow.data.decode_random((2,), flow.float32, batch_size=3))
    np.testing.assert_allclose(first, next(it))
    np.testing.assert_allclose(second, 10 * next(it), rtol=1e-6)


def test_four_devices_consistent_view_sees_the_same_batches():
    def define(n):
        @flow.global_function(type="train", function_config=_placement(n))
        def train() -> tp.Numpy:
            x = flow.data.decode_random((3,), flow.float32, batch_size=8)
            w = flow.get_variable("w", (3, 1), initializer=flow.ones_initializer())
            loss = flow.math.reduce_mean(flow.math.square(flow.matmul(x, w) - 1.0))
            _sgd().minimize(loss)
            return x

        return train

    one = define(1)
    ref = [one() for _ in range(3)]
    w1 = flow.get_all_variables()["w"]
    flow.clear_default_session()
    flow.config.seed(0)
    four = define(4)
    got = [four() for _ in range(3)]
    assert len(four.devices) == 4
    hidden = four._last_program.inputs[-1]  # the batch is split over the devices
    assert hidden.sharding.spec[0] == "data" and hidden.shape == (8, 3)
    assert all(np.array_equal(a, b) for a, b in zip(ref, got))
    np.testing.assert_allclose(flow.get_all_variables()["w"], w1, rtol=1e-6)


def test_gradient_accumulation_takes_one_batch_per_micro_step():
    cfg = flow.function_config()
    cfg.train.gradient_accumulation_steps(2)

    @flow.global_function(type="train", function_config=cfg)
    def train() -> tp.Numpy:
        x = flow.data.decode_random((3,), flow.float32, batch_size=4)
        w = flow.get_variable("w", (3, 1), initializer=flow.ones_initializer())
        _sgd().minimize(flow.math.reduce_mean(flow.matmul(x, w)))
        return x

    it = flow.data.iterate(flow.data.decode_random((3,), flow.float32, batch_size=4))
    for _ in range(2):  # the outputs of the two micro-steps, stacked
        np.testing.assert_array_equal(train(), np.stack([next(it), next(it)]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(shape="3", dtype=flow.float32), r"data.decode_random\(shape\).*shape='3'"),
        (dict(shape=(3, -1), dtype=flow.float32), r"data.decode_random\(shape\).*shape=-1"),
        (dict(shape=(3,), dtype="nope"), r"data.decode_random\(dtype\).*dtype='nope'"),
        (dict(shape=(3,), dtype=flow.float32, batch_size=0), r"batch_size.*batch_size=0"),
        (dict(shape=(3,), dtype=flow.float32, initializer=3), r"initializer.*initializer=3"),
    ],
)
def test_decode_random_bad_arguments_name_the_argument(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        flow.data.decode_random(**kwargs)

    @flow.global_function(type="predict")
    def bad() -> tp.Numpy:
        return flow.data.decode_random(**kwargs)

    with pytest.raises(ArgumentError, match=match):
        bad()
    with pytest.warns(UserWarning, match="bad"):  # the broken job is skipped, nothing was created
        assert flow.get_all_variables() == {}


def test_coin_flip_stays_a_device_op_in_a_job():
    @flow.global_function(type="predict")
    def flips() -> tp.Numpy:
        return flow.random.coin_flip(4000, probability=0.25)

    a, b = flips(), flips()
    assert a.dtype == np.int8 and abs(a.mean() - 0.25) < 0.03 and not np.array_equal(a, b)
    assert "System-Data-flips" not in flow.get_all_variables()  # no data pipeline


# ------------------------------------------------------------------------ OFRecord jobs


def test_bert_style_job_reads_int_features_and_trains(tmp_path):
    data_dir = fx.bert_dataset(tmp_path / "bert")

    @flow.global_function(type="train")
    def pretrain() -> tp.Numpy:
        return fx.bert_model(*fx.bert_inputs(data_dir))

    losses = [float(pretrain().mean()) for _ in range(60)]
    assert np.mean(losses[-6:]) < 0.25 * losses[0]
    learned = flow.get_all_variables()

    flow.clear_default_session()
    flow.config.seed(0)

    @flow.global_function(type="train")
    def fed(
        ids: tp.Numpy.Placeholder((8, fx.SEQ), flow.int32), labels: tp.Numpy.Placeholder((8,), flow.int32)
    ):
        return fx.bert_model(ids, labels)

    batches = flow.data.iterate(fx.bert_inputs(data_dir), seed=0)  # the job's seed: the same records
    fed_losses = [float(np.asarray(fed(*next(batches)).get()).mean()) for _ in range(60)]
    assert fed_losses == losses
    for name, value in flow.get_all_variables().items():
        if not name.startswith("System-"):
            np.testing.assert_array_equal(value, learned[name], err_msg=name)


def test_bert_records_are_the_dataset_in_the_sources_order(tmp_path):
    data_dir = fx.bert_dataset(tmp_path / "bert", records=12)

    @flow.global_function(type="predict")
    def read() -> tuple[tp.Numpy, tp.Numpy]:
        return fx.bert_inputs(data_dir, batch_size=4, shuffle=False)

    records = flow.data.OFRecordSource(data_dir, data_part_num=2)  # independent: ofrec's reader
    for _ in range(5):  # past the end of the epoch (12 records, batches of 4)
        ids, labels = read()
        want = [flow.data.parse_record(r) for r in records.next_records(4)]
        np.testing.assert_array_equal(ids, np.stack([w["input_ids"] for w in want]))
        np.testing.assert_array_equal(labels, np.array([w["next_sentence_labels"][0] for w in want]))


def test_resnet_style_job_reads_images_and_trains(tmp_path):
    data_dir = fx.image_dataset(tmp_path / "images")

    @flow.global_function(type="train")
    def train() -> tp.Numpy:
        return fx.resnet_model(*fx.resnet_inputs(data_dir))

    @flow.global_function(type="predict")
    def peek() -> tuple[tp.Numpy, tp.Numpy]:
        return fx.resnet_inputs(data_dir)

    losses = [float(train().mean()) for _ in range(30)]
    assert np.mean(losses[-5:]) < 0.2 * losses[0]
    images, labels = peek()
    assert images.shape == (8, 3, 12, 12) and images.dtype == np.float32
    assert labels.dtype == np.int32 and set(labels.tolist()) <= {0, 1}
    bright = images.mean(axis=(1, 2, 3)) > 0  # normalized: label-1 images are bright
    np.testing.assert_array_equal(bright, labels == 1)


def test_resnet_style_pipeline_matches_the_image_ops(tmp_path):
    """The in-job images are the host image ops applied to the decoded records, with the
    coin flips drawn by the pipeline (independently recomputed here from the same stream)."""
    data_dir = fx.image_dataset(tmp_path / "images", records=8)

    @flow.global_function(type="predict")
    def peek() -> tuple[tp.Numpy, tp.Numpy]:
        rec = flow.data.ofrecord_reader(data_dir, batch_size=4, data_part_num=2)
        image = flow.data.OFRecordImageDecoder(rec, "encoded")
        rsz, _, _ = flow.image.Resize(image, target_size=[10, 10])
        return flow.image.CropMirrorNormalize(rsz, flow.random.coin_flip(4, probability=0.5)), rsz

    got, resized = peek()
    records = flow.data.OFRecordSource(data_dir, data_part_num=2).next_records(4)
    decoded = flow.data.decode_image(records, "encoded")
    want_rsz = np.stack([cv2_resize(im, 10, 10) for im in decoded])
    np.testing.assert_array_equal(resized, want_rsz)
    assert got.shape == (4, 3, 10, 10)
    flipped = [np.array_equal(got[i], want_rsz[i].transpose(2, 0, 1)[:, :, ::-1]) for i in range(4)]
    plain = [np.array_equal(got[i], want_rsz[i].transpose(2, 0, 1).astype(np.float32)) for i in range(4)]
    assert all(f != p for f, p in zip(flipped, plain))  # each image either mirrored or not


def cv2_resize(image, w, h):
    import cv2

    interp = cv2.INTER_LINEAR if w * h > image.shape[0] * image.shape[1] else cv2.INTER_AREA
    return cv2.resize(image, (w, h), interpolation=interp)


def test_resnet_style_job_on_four_devices(tmp_path):
    data_dir = fx.image_dataset(tmp_path / "images")

    def define(n):
        @flow.global_function(type="train", function_config=_placement(n))
        def train() -> tp.Numpy:
            images, labels = fx.resnet_inputs(data_dir)
            fx.resnet_model(images, labels)
            return images

        return train

    one = define(1)
    ref = [one() for _ in range(3)]
    w1 = flow.get_all_variables()["conv-weight"]
    flow.clear_default_session()
    flow.config.seed(0)
    four = define(4)
    for a in ref:
        np.testing.assert_array_equal(four(), a)
    assert len(four.devices) == 4
    np.testing.assert_allclose(flow.get_all_variables()["conv-weight"], w1, rtol=1e-5, atol=1e-6)


def test_missing_dataset_is_a_clear_error_and_creates_nothing(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match="nowhere.*part-0"):
        flow.data.ofrecord_reader(missing, batch_size=2)

    @flow.global_function(type="predict")
    def read() -> tp.Numpy:
        rec = flow.data.ofrecord_reader(missing, batch_size=2)
        return flow.data.OFRecordRawDecoder(rec, "x", shape=(), dtype=flow.int32)

    with pytest.raises(DataError, match="nowhere"):
        read()
    with pytest.warns(UserWarning, match="read"):
        assert flow.get_all_variables() == {}


def test_shape_mismatch_names_the_feature(tmp_path):
    data_dir = fx.bert_dataset(tmp_path / "bert", records=4)

    @flow.global_function(type="predict")
    def read() -> tp.Numpy:
        rec = flow.data.ofrecord_reader(data_dir, batch_size=2, data_part_num=2)
        return flow.data.OFRecordRawDecoder(rec, "input_ids", shape=(fx.SEQ - 3,), dtype=flow.int32)

    with pytest.raises(DataError, match="input_ids"):
        read()
    with pytest.raises(DataError, match="input_ids"):  # the failed batch is not skipped
        read()


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda d: flow.data.ofrecord_reader(d, batch_size=0), r"batch_size=0"),
        (lambda d: flow.data.ofrecord_reader(d, data_part_num=3), r"part-2"),
        (lambda d: flow.data.OFRecordRawDecoder(np.zeros(3), "x", (1,), flow.int32), r"input_blob"),
        (
            lambda d: flow.data.OFRecordRawDecoder(flow.data.ofrecord_reader(d), "x", (1,), flow.float16),
            r"dtype",
        ),
        (lambda d: flow.data.OFRecordImageDecoder(flow.data.ofrecord_reader(d), ""), r"blob_name=''"),
        (
            lambda d: flow.image.CropMirrorNormalize(
                flow.data.OFRecordImageDecoder(flow.data.ofrecord_reader(d), "encoded")
            ),
            r"crop_h, crop_w",
        ),
        (
            lambda d: flow.image.Resize(flow.data.ofrecord_reader(d), target_size=[4, 4]),
            r"image.Resize\(image\) takes list or tensor; got the records output",
        ),
    ],
)
def test_bad_data_op_arguments(tmp_path, build, match):
    data_dir = fx.bert_dataset(tmp_path / "bert", records=4)
    with pytest.raises((ArgumentError, DataError), match=match):
        build(data_dir)


def test_resize_with_oneflows_deprecated_arguments_returns_the_images(tmp_path):
    data_dir = fx.image_dataset(tmp_path / "images", records=4)
    rec = flow.data.ofrecord_reader(data_dir, batch_size=2, data_part_num=2)
    image = flow.data.OFRecordImageDecoder(rec, "encoded")
    with pytest.warns(DeprecationWarning, match="deprecated"):  # once, when the op is called
        rsz = flow.image.Resize(image, resize_x=6, resize_y=5, color_space="BGR")
    assert rsz.shape == (2, 5, 6, 3)
    batch = next(flow.data.iterate(rsz))
    assert batch.shape == (2, 5, 6, 3) and batch.dtype == np.uint8
