"""OneFlow's image ops as host functions (jobflow._src.data.image_ops).

Expectations are independent of the implementation: OpenCV called directly with the flag
OneFlow's kernel maps each interpolation to, sizes and crops derived by hand from OneFlow's
v0.4.0 kernels (image_resize_kernels.cpp, image_preprocess_kernels.cpp,
random_crop_generator.cpp), numpy written out per image, and invariants over many seeds.
"""

import cv2
import numpy as np
import pytest

from jobflow._src.core.errors import ArgumentError
from jobflow._src.data import image_ops as ops


def _image(h, w, c=3, seed=0, dtype=np.uint8):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c)).astype(dtype)


# ----------------------------------------------------------------------------- resize to a fixed size


@pytest.mark.parametrize(
    "interpolation_type, flag",
    [("bilinear", cv2.INTER_LINEAR), ("nearest_neighbor", cv2.INTER_NEAREST), ("nn", cv2.INTER_NEAREST),
     ("bicubic", cv2.INTER_CUBIC), ("area", cv2.INTER_AREA)],
)  # fmt: skip
def test_resize_fixed_equals_cv2_resize_with_the_named_interpolation(interpolation_type, flag):
    images = [_image(37, 53, seed=1), _image(64, 20, seed=2)]
    out, scale, new_size = ops.resize(images, target_size=(24, 16), interpolation_type=interpolation_type)
    assert out.shape == (2, 16, 24, 3) and out.dtype == np.uint8 and new_size is None
    for i, im in enumerate(images):
        np.testing.assert_array_equal(out[i], cv2.resize(im, (24, 16), interpolation=flag))
    np.testing.assert_array_equal(scale, np.float32([[24 / 53, 16 / 37], [24 / 20, 16 / 64]]))
    assert scale.dtype == np.float32


def test_resize_auto_is_area_when_shrinking_and_bilinear_when_growing():
    small, large = _image(10, 12, seed=3), _image(50, 60, seed=4)
    out, _, _ = ops.resize([small, large], target_size=(23, 19))  # 437 px: small grows, large shrinks
    np.testing.assert_array_equal(out[0], cv2.resize(small, (23, 19), interpolation=cv2.INTER_LINEAR))
    np.testing.assert_array_equal(out[1], cv2.resize(large, (23, 19), interpolation=cv2.INTER_AREA))
    # Equal pixel counts count as growing (res_w * res_h >= org_w * org_h).
    same, _, _ = ops.resize([_image(20, 30, seed=5)], target_size=(20, 30))
    np.testing.assert_array_equal(
        same[0], cv2.resize(_image(20, 30, seed=5), (20, 30), interpolation=cv2.INTER_LINEAR)
    )
    assert not np.array_equal(
        cv2.resize(large, (23, 19), interpolation=cv2.INTER_AREA),
        cv2.resize(large, (23, 19), interpolation=cv2.INTER_LINEAR),
    )  # the two flags really differ on this input


def test_resize_fixed_dtype_conversion_and_gray_images():
    im = _image(9, 7, seed=6)
    out, _, _ = ops.resize([im], target_size=(np.int64(14), 18), dtype=np.float32)  # numpy ints are ints
    np.testing.assert_array_equal(
        out[0], cv2.resize(im, (14, 18), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    )
    # float -> uint8 as OpenCV's convertTo: round half to even, saturate.
    f = np.float32([[2.5, 3.5, 300.7, -3.0]]).reshape(1, 4, 1)
    out, _, _ = ops.resize([f], target_size=(4, 1), channels=1, dtype=np.uint8)
    np.testing.assert_array_equal(out.reshape(-1), [2, 4, 255, 0])
    gray = _image(8, 8, c=1, seed=7)
    out, _, _ = ops.resize(np.stack([gray, gray]), target_size=(4, 4), channels=1)
    assert out.shape == (2, 4, 4, 1)
    np.testing.assert_array_equal(
        out[1, :, :, 0], cv2.resize(gray[:, :, 0], (4, 4), interpolation=cv2.INTER_AREA)
    )


# ----------------------------------------------------------------------------- resize keeping the aspect ratio


@pytest.mark.parametrize(
    "hw, kwargs, new_wh",
    [
        ((30, 40), dict(target_size=20), (27, 20)),  # 20 / 0.75 = 26.67 -> 27
        ((40, 30), dict(target_size=20), (20, 27)),  # portrait: the width is the shorter side
        ((10, 20), dict(target_size=13, resize_side="longer"), (13, 6)),  # 6.5 -> 6: half to even
        ((10, 20), dict(target_size=15, resize_side="longer"), (15, 8)),  # 7.5 -> 8: half to even
        ((100, 300), dict(target_size=50, max_size=120), (120, 40)),  # longer 150 > 120: capped
        ((100, 300), dict(target_size=50, max_size=200), (150, 50)),  # under the cap
        ((100, 400), dict(target_size=80, min_size=30, resize_side="longer"), (120, 30)),  # shorter 20 < 30
        ((64, 64), dict(target_size=32, resize_side="longer"), (32, 32)),
    ],
)
def test_resize_keep_aspect_ratio_sizes_derived_by_hand(hw, kwargs, new_wh):
    im = _image(*hw, seed=8)
    out, scale, new_size = ops.resize([im], keep_aspect_ratio=True, **kwargs)
    w, h = new_wh
    assert isinstance(out, list) and out[0].shape == (h, w, 3) and out[0].dtype == np.uint8
    np.testing.assert_array_equal(new_size, np.int32([[w, h]]))
    assert new_size.dtype == np.int32 and scale.dtype == np.float32
    np.testing.assert_array_equal(scale, np.float32([[w / hw[1], h / hw[0]]]))
    flag = cv2.INTER_LINEAR if w * h >= hw[0] * hw[1] else cv2.INTER_AREA
    np.testing.assert_array_equal(out[0], cv2.resize(im, (w, h), interpolation=flag))


def test_resize_keep_aspect_ratio_keeps_float_images_float_and_sizes_vary():
    images = [_image(30, 40, seed=9, dtype=np.float32), _image(50, 25, seed=10, dtype=np.float32)]
    out, new_size, _ = ops.image_target_resize(images, 10)  # OneFlow's order: images, size, scale
    assert [o.shape for o in out] == [(10, 13, 3), (20, 10, 3)] and all(o.dtype == np.float32 for o in out)
    np.testing.assert_array_equal(new_size, [[13, 10], [10, 20]])


def test_resize_deprecated_arguments_return_only_the_images():
    im = _image(20, 30, seed=11)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        out = ops.resize([im], resize_x=15, resize_y=10, interp_type="NN")
    np.testing.assert_array_equal(out[0], cv2.resize(im, (15, 10), interpolation=cv2.INTER_NEAREST))
    with pytest.warns(DeprecationWarning):
        out = ops.resize([im], resize_shorter=10)
    assert out[0].shape == (10, 15, 3)
    gray = _image(4, 4, c=1, seed=12)
    with pytest.warns(DeprecationWarning):
        out = ops.resize([gray], target_size=(2, 2), color_space="GRAY")
    assert out.shape == (1, 2, 2, 1)


# ----------------------------------------------------------------------------- crop, mirror, normalize


def _cmn_reference(images, mirror, crop_h, crop_w, pos_y, pos_x, mean, std, layout):
    """Written out per image: crop at int((H - h) * pos), flip columns, (x - mean) / std."""
    out = []
    for i, im in enumerate(images):
        H, W, C = im.shape
        y0, x0 = int((H - crop_h) * pos_y), int((W - crop_w) * pos_x)
        window = im[y0 : y0 + crop_h, x0 : x0 + crop_w].astype(np.float64)
        if mirror is not None and mirror[i]:
            window = window[:, ::-1]
        norm = (window - np.broadcast_to(mean, (C,))) / np.broadcast_to(std, (C,))
        out.append(norm.transpose(2, 0, 1) if layout == "NCHW" else norm)
    return np.stack(out)


def test_crop_mirror_normalize_small_example_by_hand():
    im = np.arange(20, dtype=np.uint8).reshape(1, 4, 5, 1)  # rows 0..3, cols 0..4, value 5*y + x
    out = ops.crop_mirror_normalize(im, color_space="GRAY", crop_h=2, crop_w=3, mean=[1.0], std=[2.0])
    # y0 = int(2 * 0.5) = 1, x0 = int(2 * 0.5) = 1: rows 1..2, cols 1..3
    np.testing.assert_array_equal(out, np.float32([[[[2.5, 3.0, 3.5], [5.0, 5.5, 6.0]]]]))
    out = ops.crop_mirror_normalize(
        im, mirror=np.int8([1]), color_space="GRAY", crop_h=2, crop_w=3, crop_pos_x=0.0
    )
    np.testing.assert_array_equal(out[0, 0], [[7, 6, 5], [12, 11, 10]])
    out = ops.crop_mirror_normalize(
        im, color_space="GRAY", crop_h=2, crop_w=3, crop_pos_y=1.0, crop_pos_x=1.0
    )
    np.testing.assert_array_equal(out[0, 0], [[12, 13, 14], [17, 18, 19]])


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_crop_mirror_normalize_matches_numpy_per_image(layout):
    mean, std = np.array([123.68, 116.779, 103.939]), np.array([58.393, 57.12, 57.375])
    images = [_image(40, 50, seed=13), _image(33, 30, seed=14), _image(60, 28, seed=15)]
    mirror = np.int8([1, 0, 1])
    out = ops.crop_mirror_normalize(
        images,
        mirror,
        "RGB",
        layout,
        crop_h=24,
        crop_w=26,
        crop_pos_y=0.3,
        crop_pos_x=0.7,
        mean=mean,
        std=std,
    )
    assert out.dtype == np.float32
    ref = _cmn_reference(images, mirror, 24, 26, 0.3, 0.7, mean, std, layout)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    dense = np.stack([_image(40, 50, seed=s) for s in range(4)])
    mirror = np.int8([0, 1, 1, 0])
    out = ops.crop_mirror_normalize(
        dense, mirror, output_layout=layout, crop_h=31, crop_w=17, mean=[5.0], std=[3.0]
    )
    ref = _cmn_reference(dense, mirror, 31, 17, 0.5, 0.5, 5.0, 3.0, layout)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    # Bit for bit the kernel's float32 arithmetic: (float(x) - mean) * (1.0f / std).
    window = dense[:, 4:35, 16:33].astype(np.float32)  # y0 = int(9 * 0.5) = 4, x0 = int(33 * 0.5) = 16
    window[1:3] = window[1:3, :, ::-1]
    exact = (window - np.float32(5.0)) * (np.float32(1) / np.float32(3.0))
    np.testing.assert_array_equal(out, exact.transpose(0, 3, 1, 2) if layout == "NCHW" else exact)


def test_crop_mirror_normalize_dense_batch_without_crop_or_with_a_larger_crop():
    dense = np.stack([_image(12, 9, seed=s) for s in range(2)])
    full = ops.crop_mirror_normalize(dense, output_layout="NHWC")  # crop 0: the whole image
    np.testing.assert_array_equal(full, dense.astype(np.float32))
    clipped = ops.crop_mirror_normalize(dense, crop_h=20, crop_w=5)  # crop_h > 12: shrinks to 12
    np.testing.assert_array_equal(clipped, _cmn_reference(dense, None, 12, 5, 0.5, 0.5, 0.0, 1.0, "NCHW"))


def test_crop_mirror_normalize_bad_arguments_name_the_argument():
    dense = np.stack([_image(8, 8, seed=0)] * 2)
    with pytest.raises(ArgumentError, match=r"output_layout.*'NHW'"):
        ops.crop_mirror_normalize(dense, output_layout="NHW")
    with pytest.raises(ArgumentError, match=r"mean.*\[1.0, 2.0\]"):
        ops.crop_mirror_normalize(dense, mean=[1.0, 2.0])
    with pytest.raises(ArgumentError, match=r"std"):
        ops.crop_mirror_normalize(dense, std=[0.0])
    with pytest.raises(ArgumentError, match=r"crop_h, crop_w.*crop_h=10.*shape \(8, 8, 3\)"):
        ops.crop_mirror_normalize(list(dense), crop_h=10, crop_w=4)
    with pytest.raises(ArgumentError, match=r"crop_h, crop_w.*> 0"):
        ops.crop_mirror_normalize(list(dense))
    with pytest.raises(ArgumentError, match=r"mirror"):
        ops.crop_mirror_normalize(dense, mirror=np.int8([1, 0, 1]))
    with pytest.raises(ArgumentError, match=r"color_space"):
        ops.crop_mirror_normalize(dense, color_space="GRAY")
    with pytest.raises(ArgumentError, match=r"output_dtype"):
        ops.crop_mirror_normalize(dense, output_dtype=np.float16)
    with pytest.raises(ArgumentError, match=r"uint8"):
        ops.crop_mirror_normalize(dense.astype(np.float32))
    with pytest.raises(ArgumentError, match=r"crop_pos_x=1.5"):
        ops.crop_mirror_normalize(dense, crop_pos_x=1.5)


def test_resize_bad_arguments_name_the_argument():
    im = [_image(8, 8)]
    with pytest.raises(ArgumentError, match=r"target_size.*\(width, height\).*target_size=224"):
        ops.resize(im, target_size=224)
    with pytest.raises(ArgumentError, match=r"target_size.*an int.*\(224, 224\)"):
        ops.resize(im, target_size=(224, 224), keep_aspect_ratio=True)
    with pytest.raises(ArgumentError, match=r"max_size.*max_size=10"):
        ops.resize(im, target_size=20, max_size=10, keep_aspect_ratio=True)
    with pytest.raises(ArgumentError, match=r"resize_side.*'both'"):
        ops.resize(im, target_size=20, resize_side="both", keep_aspect_ratio=True)
    with pytest.raises(ArgumentError, match=r"interpolation_type.*'lanczos'"):
        ops.resize(im, target_size=(4, 4), interpolation_type="lanczos")
    with pytest.raises(ArgumentError, match=r"channels.*channels=1"):
        ops.resize(im, target_size=(4, 4), channels=1)
    with pytest.raises(ArgumentError, match=r"images.*shape \(8, 8\)"):
        ops.resize([np.zeros((8, 8), np.uint8)], target_size=(4, 4))
    with pytest.raises(ArgumentError, match=r"images.*at least one"):
        ops.resize([], target_size=(4, 4))


# ----------------------------------------------------------------------------- random crop


def _coords(h, w):
    """A float32 image whose pixels hold their own (y, x, 0): a crop tells where it came from."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([y, x, np.zeros_like(y)], axis=-1)


def test_random_crop_windows_stay_in_range_and_hold_the_image_pixels():
    img = _coords(120, 90)
    area = (0.08, 1.0)
    crops = ops.random_crop([img] * 300, rng=np.random.default_rng(0))
    for c in crops:
        h, w = c.shape[:2]
        y0, x0 = int(c[0, 0, 0]), int(c[0, 0, 1])
        np.testing.assert_array_equal(c, img[y0 : y0 + h, x0 : x0 + w])
        assert 0.75 <= w / h <= 1.333334
        # w, h are sqrt(area * ratio) and sqrt(area / ratio) rounded: area within rounding slack
        assert area[0] * 120 * 90 - (w + h) <= w * h <= area[1] * 120 * 90 + (w + h)
    assert len({c.shape for c in crops}) > 100  # really random


def test_random_crop_is_deterministic_for_a_seed():
    imgs = [_image(50, 70, seed=s) for s in range(8)]
    a = ops.random_crop(imgs, rng=123)
    b = ops.random_crop(imgs, rng=np.random.default_rng(123))
    c = ops.random_crop(imgs, rng=124)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, c))


def _windows_one_by_one(n, height, width, rng, attempts, area, ratio=(0.75, 1.333333)):
    return [ops.random_crop_window(height, width, rng, attempts, area, ratio) for _ in range(n)]


def _windows_batched(n, height, width, rng, attempts, area, ratio=(0.75, 1.333333)):
    windows = ops.random_crop_windows([height] * n, [width] * n, rng, attempts, area, ratio)
    return [tuple(int(v) for v in w) for w in windows]


@pytest.mark.parametrize("draw", [_windows_one_by_one, _windows_batched])
def test_random_crop_falls_back_after_num_attempts(draw):
    # 100x200, area exactly 0.5 (target 10000 px): h = 100 / sqrt(ratio) fits only for ratio >= 1,
    # half of the log-uniform range [0.75, 1.333]. The fallback is the widest in-range window
    # (100 x int(100 * 1.333333) = 133) shrunk to 10000 px: sqrt(10000 / 13300) = 0.8671,
    # h = int(100 * 0.8671) = 86, w = int(133 * 0.8671) = 115.
    gen = np.random.default_rng(7)
    windows = draw(400, 100, 200, gen, 1, (0.5, 0.5))
    fallback = [w for w in windows if w[2:] == (86, 115)]
    for y, x, h, w in windows:
        assert 0 <= y <= 100 - h and 0 <= x <= 200 - w
        if (h, w) != (86, 115):
            assert h <= 100 and 1.0 <= w / h <= 1.333334 and abs(w * h - 10000) <= w + h
    assert 0.35 < len(fallback) / 400 < 0.65
    assert len({(y, x) for y, x, _, _ in fallback}) > 10  # the fallback's anchor is random too
    windows = draw(400, 100, 200, gen, 10, (0.5, 0.5))
    assert sum(w[2:] == (86, 115) for w in windows) <= 4  # 0.5 ** 10 per draw


def test_random_crop_windows_do_not_depend_on_the_batch_size_and_match_the_scalar_path():
    heights, widths = [120, 50, 300, 64], [90, 400, 310, 64]
    batch = ops.random_crop_windows(heights, widths, rng=11)
    first = ops.random_crop_windows(heights[:1], widths[:1], rng=11)
    np.testing.assert_array_equal(first[0], batch[0])
    gen = np.random.default_rng(11)
    one_by_one = [ops.random_crop_window(h, w, gen) for h, w in zip(heights, widths)]
    # the same draws, float32 arithmetic in both: equal up to exp's last bit (numpy's vs libm's)
    assert sum(tuple(b) == o for b, o in zip(batch.tolist(), one_by_one)) >= 3


def test_random_crop_too_wide_an_image_takes_the_widest_window_in_range():
    # 40x1000: the widest in-range window, 40 x int(40 * 1.333333) = 53 = 2120 px, is below the
    # smallest area 0.08 * 40000 = 3200 px: OneFlow takes H x maxW without drawing.
    windows = ops.random_crop_windows([40] * 50, [1000] * 50, rng=0)
    assert (windows[:, 0] == 0).all() and (windows[:, 2:] == (40, 53)).all()
    assert 0 <= windows[:, 1].min() and windows[:, 1].max() <= 947 and len(set(windows[:, 1])) > 40
    # 1000x40, the other way round: maxH = int(40 / 0.75) = 53 rows of the full width
    y, x, h, w = ops.random_crop_window(1000, 40, rng=1)
    assert (x, h, w) == (0, 53, 40) and 0 <= y <= 947


def test_random_crop_bad_arguments():
    with pytest.raises(ArgumentError, match=r"random_area.*\(0.0, 1.0\)"):
        ops.random_crop([_image(8, 8)], random_area=(0.0, 1.0))
    with pytest.raises(ArgumentError, match=r"random_aspect_ratio"):
        ops.random_crop([_image(8, 8)], random_aspect_ratio=(2.0, 1.0))
    with pytest.raises(ArgumentError, match=r"num_attempts.*num_attempts=0"):
        ops.random_crop([_image(8, 8)], num_attempts=0)


# ----------------------------------------------------------------------------- flip, coin flip


def test_flip_codes():
    im = _image(5, 7, seed=20)
    expect = {0: im, 1: im[:, ::-1], 16: im[::-1], 17: im[::-1, ::-1]}
    for code, want in expect.items():
        np.testing.assert_array_equal(ops.flip([im], code)[0], want)
    dense = np.stack([im] * 4)
    out = ops.flip(dense, np.int8([0, 1, 16, 17]))
    assert isinstance(out, np.ndarray) and out.shape == dense.shape
    for i, code in enumerate([0, 1, 16, 17]):
        np.testing.assert_array_equal(out[i], expect[code])
    np.testing.assert_array_equal(ops.flip([im], 1)[0], cv2.flip(im, 1))  # OneFlow calls cv::flip(.., 1)
    with pytest.raises(ArgumentError, match=r"flip_code.*flip_code=2"):
        ops.flip([im], 2)
    with pytest.raises(ArgumentError, match=r"flip_code"):
        ops.flip([im, im], np.int8([1]))


def test_coin_flip_frequency_and_determinism():
    coins = ops.coin_flip(20000, 0.3, rng=0)
    assert coins.dtype == np.int8 and coins.shape == (20000,) and set(np.unique(coins)) == {0, 1}
    assert abs(coins.mean() - 0.3) < 0.015  # 4.6 standard deviations
    np.testing.assert_array_equal(coins, ops.coin_flip(20000, 0.3, rng=0))
    gen = np.random.default_rng(1)
    assert not np.array_equal(ops.coin_flip(64, rng=gen), ops.coin_flip(64, rng=gen))  # the stream advances
    assert not ops.coin_flip(100, 0.0, rng=2).any() and ops.coin_flip(100, 1.0, rng=2).all()
    with pytest.raises(ArgumentError, match=r"probability.*probability=1.5"):
        ops.coin_flip(4, 1.5)
    with pytest.raises(ArgumentError, match=r"batch_size.*batch_size=0"):
        ops.coin_flip(0)


# ----------------------------------------------------------------------------- normalize, batch align


def test_image_normalize_per_channel():
    images = [_image(4, 6, seed=21, dtype=np.float32), _image(3, 2, seed=22, dtype=np.float32)]
    out = ops.image_normalize(images, std=[2.0, 4.0, 8.0], mean=[1.0, 2.0, 3.0])
    for im, o in zip(images, out):
        np.testing.assert_allclose(o, (im - [1, 2, 3]) / [2, 4, 8], rtol=1e-6)
    with pytest.raises(ArgumentError, match=r"std.*\[1.0\]"):
        ops.image_normalize(images, std=[1.0], mean=[0.0, 0.0, 0.0])
    with pytest.raises(ArgumentError, match=r"float32"):
        ops.image_normalize([_image(4, 4)], std=[1.0] * 3, mean=[0.0] * 3)


def test_image_batch_align_pads_to_the_aligned_maximum():
    a, b = _image(5, 9, seed=23), _image(13, 4, seed=24)
    out = ops.image_batch_align([a, b], shape=(16, 16, 3), dtype=np.float32, alignment=8)
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.float32  # max 13 x 9 -> 16 x 16
    np.testing.assert_array_equal(out[0, :5, :9], a)
    np.testing.assert_array_equal(out[1, :13, :4], b)
    assert not out[0, 5:].any() and not out[0, :, 9:].any() and not out[1, :, 4:].any()
    with pytest.raises(ArgumentError, match=r"shape.*16x16"):
        ops.image_batch_align([a, b], shape=(13, 9, 3), dtype=np.uint8, alignment=8)
