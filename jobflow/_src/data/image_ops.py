"""OneFlow v0.4's image ops as host functions on numpy batches.

Each function does what the OneFlow v0.4.0 CPU kernel of the same op computes, with the op's
argument names and defaults (``oneflow/python/ops/user_data_ops.py``; kernels in
``oneflow/user/kernels/image_resize_kernels.cpp``, ``image_preprocess_kernels.cpp``,
``image_object_preprocess_kernels.cpp``, ``image_batch_align_kernel.cpp`` and
``oneflow/user/image/random_crop_generator.cpp``). jobflow's in-job data pipeline calls them
on the host, in a background thread, and feeds their output to the compiled step.

A batch of images is either a list of HWC arrays (OneFlow's ``TensorBuffer`` blob: the
images may differ in size) or a dense NHWC array (a ``uint8``/``float`` blob). Images have
1 or 3 channels. Resizing uses OpenCV's ``cv2.resize``, as OneFlow's kernels do, with the
interpolation OneFlow maps each ``interpolation_type`` to (:func:`cv_interpolation`).

Randomness comes from a :class:`numpy.random.Generator` (``rng``: a generator, an int seed
or None for a fresh one): the distributions are OneFlow's, the random streams are numpy's,
so a seed does not give OneFlow's exact crops or coins.

Bad arguments raise :class:`~jobflow.errors.ArgumentError` naming the op and the argument
and echoing the value (where OneFlow's kernels stop with a ``CHECK`` failure).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from jobflow._src.core import checks
from jobflow._src.core.dtypes import as_dtype
from jobflow._src.core.errors import ArgumentError

__all__ = [
    "ImageBatch",
    "resize",
    "image_target_resize",
    "crop_mirror_normalize",
    "random_crop",
    "random_crop_window",
    "random_crop_windows",
    "flip",
    "coin_flip",
    "image_normalize",
    "image_batch_align",
    "cv_interpolation",
    "resized_size_keep_aspect_ratio",
]

ImageBatch = np.ndarray | Sequence[np.ndarray]
RngLike = np.random.Generator | int | None

_UINT8 = np.dtype(np.uint8)
_FLOAT32 = np.dtype(np.float32)
_INTERPOLATIONS: dict[str, int | None] = {
    "bilinear": cv2.INTER_LINEAR,
    "nearest_neighbor": cv2.INTER_NEAREST,
    "nn": cv2.INTER_NEAREST,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "auto": None,
}
_COLOR_CHANNELS = {"BGR": 3, "RGB": 3, "GRAY": 1}
_FLIP_CODES = (0x00, 0x01, 0x10, 0x11)


# ----------------------------------------------------------------------------- helpers


def _rng(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _images(owner: str, images: Any, dtypes: Sequence[np.dtype] = (_UINT8, _FLOAT32)) -> list[np.ndarray]:
    """``images`` as a list of HWC arrays (1 or 3 channels, a dtype in ``dtypes``)."""
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ArgumentError(
                f"{owner}(images) must be a list of HWC images or an NHWC array; got an array of shape "
                f"{images.shape}"
            )
        seq = list(images)
    elif isinstance(images, (list, tuple)):
        seq = list(images)
    else:
        raise ArgumentError(
            f"{owner}(images) must be a list of HWC images or an NHWC array; got images={images!r}"
        )
    if not seq:
        raise ArgumentError(f"{owner}(images) must hold at least one image; got images={images!r}")
    for i, im in enumerate(seq):
        shape = getattr(im, "shape", None)
        if not isinstance(im, np.ndarray) or im.ndim != 3 or im.shape[2] not in (1, 3) or 0 in im.shape:
            raise ArgumentError(
                f"{owner}(images) must hold non-empty HWC images with 1 or 3 channels; "
                f"got images[{i}] of shape {shape}"
            )
        if im.dtype not in dtypes:
            names = " or ".join(str(d) for d in dtypes)
            raise ArgumentError(
                f"{owner}(images) must hold {names} images; got images[{i}] of dtype {im.dtype}"
            )
    return seq


def _floats(owner: str, name: str, values: Any, lengths: Sequence[int]) -> np.ndarray:
    """A list of finite numbers of one of the ``lengths``, as float32."""
    if isinstance(values, numbers.Real) or isinstance(values, (str, bytes)):
        raise ArgumentError(f"{owner}({name}) must be a list of numbers; got {name}={values!r}")
    try:
        out = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentError(f"{owner}({name}) must be a list of numbers; got {name}={values!r}") from None
    if out.ndim != 1 or len(out) not in lengths or not np.all(np.isfinite(out)):
        want = " or ".join(str(n) for n in lengths)
        raise ArgumentError(f"{owner}({name}) must be a list of {want} finite numbers; got {name}={values!r}")
    return out.astype(np.float32)


def _range(owner: str, name: str, values: Any) -> tuple[float, float]:
    """OneFlow's ``[low, high]`` attribute: two numbers with ``0 < low <= high``."""
    lo, hi = (float(v) for v in _floats(owner, name, values, (2,)))
    if not 0 < lo <= hi:
        raise ArgumentError(
            f"{owner}({name}) must be [low, high] with 0 < low <= high; got {name}={values!r}"
        )
    return lo, hi


def _per_image(owner: str, name: str, values: Any, n: int) -> np.ndarray:
    """A per-image int8 vector (a mirror or flip-code blob) of length ``n``."""
    arr = np.asarray(values)
    if arr.ndim != 1 or len(arr) != n or not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ArgumentError(
            f"{owner}({name}) must be a 1-D int array with one value per image ({n}); got {name}={values!r}"
        )
    return arr.astype(np.int8)


def _restack(images: ImageBatch, out: list[np.ndarray]) -> ImageBatch:
    """``out`` in the container ``images`` came in: a dense array stays dense."""
    if isinstance(images, np.ndarray):
        return np.stack(out)
    return out


# ----------------------------------------------------------------------------- resize


def cv_interpolation(interpolation_type: str, org_w: int, org_h: int, res_w: int, res_h: int) -> int:
    """The OpenCV flag OneFlow's ``GetCvInterpolationFlag`` picks: ``"auto"`` is bilinear when
    the image grows (``res_w*res_h >= org_w*org_h``) and area averaging when it shrinks."""
    flag = _INTERPOLATIONS[interpolation_type]
    if flag is None:
        return cv2.INTER_LINEAR if res_w * res_h >= org_w * org_h else cv2.INTER_AREA
    return flag


def resized_size_keep_aspect_ratio(
    height: int,
    width: int,
    target_size: int,
    min_size: int = 0,
    max_size: int = 0,
    resize_longer: bool = False,
) -> tuple[int, int]:
    """``(new_width, new_height)`` of OneFlow's ``image_resize_keep_aspect_ratio``.

    The chosen side (the shorter one, or the longer one with ``resize_longer``) becomes
    ``target_size`` and the other keeps the aspect ratio, rounded half to even. With
    ``max_size > 0`` (shorter side) a longer side above ``max_size`` becomes ``max_size``
    and the shorter side follows; with ``min_size > 0`` (longer side) a shorter side below
    ``min_size`` becomes ``min_size`` and the longer side follows.
    """
    aspect = min(height, width) / max(height, width)
    if resize_longer:
        res_max = float(target_size)
        res_min = float(round(res_max * aspect))
        if min_size > 0 and res_min < min_size:
            res_min = float(min_size)
            res_max = float(round(res_min / aspect))
    else:
        res_min = float(target_size)
        res_max = float(round(res_min / aspect))
        if max_size > 0 and res_max > max_size:
            res_max = float(max_size)
            res_min = float(round(res_max * aspect))
    if width < height:
        return int(res_min), int(res_max)
    return int(res_max), int(res_min)


def _cv_resize(image: np.ndarray, res_w: int, res_h: int, interpolation_type: str) -> np.ndarray:
    h, w, c = image.shape
    flag = cv_interpolation(interpolation_type, w, h, res_w, res_h)
    return cv2.resize(image, (res_w, res_h), interpolation=flag).reshape(res_h, res_w, c)


def _convert(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """OpenCV's ``convertTo``: float to uint8 rounds half to even and saturates."""
    if image.dtype == dtype:
        return image
    if dtype == _UINT8:
        return np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return image.astype(dtype)


def _scales(sizes: Sequence[tuple[int, int, int, int]]) -> np.ndarray:
    """``(N, 2)`` float32 ``[new_w / w, new_h / h]`` from ``(h, w, new_h, new_w)`` rows."""
    s = np.asarray(sizes, dtype=np.float32).reshape(-1, 4)
    return np.stack([s[:, 3] / s[:, 1], s[:, 2] / s[:, 0]], axis=1)


def _resize_fixed(
    images: list[np.ndarray], target_size: Any, channels: int, dtype: np.dtype, interpolation_type: str
) -> tuple[np.ndarray, np.ndarray]:
    owner = "image.Resize"
    if (
        not isinstance(target_size, (list, tuple))
        or len(target_size) != 2
        or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and int(s) > 0 for s in target_size
        )
    ):
        raise ArgumentError(
            f"{owner}(target_size) must be (width, height), two ints > 0, when keep_aspect_ratio is False; "
            f"got target_size={target_size!r}"
        )
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ArgumentError(f"{owner}(channels) must be 1 or 3; got channels={channels!r}")
    if dtype not in (_UINT8, _FLOAT32):
        raise ArgumentError(f"{owner}(dtype) must be uint8 or float32; got dtype={dtype!r}")
    res_w, res_h = (int(s) for s in target_size)
    out = np.empty((len(images), res_h, res_w, channels), dtype=dtype)
    for i, image in enumerate(images):
        if image.shape[2] != channels:
            raise ArgumentError(
                f"{owner}(channels) must match the images' channels; got channels={channels} and "
                f"images[{i}] of shape {image.shape}"
            )
        out[i] = _convert(_cv_resize(image, res_w, res_h, interpolation_type), dtype)
    return out, _scales([(im.shape[0], im.shape[1], res_h, res_w) for im in images])


def _resize_keep(
    images: list[np.ndarray], target_size: Any, min_size: Any, max_size: Any, resize_side: str, interp: str
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    owner = "image.Resize"
    if isinstance(target_size, bool) or not isinstance(target_size, numbers.Integral):
        raise ArgumentError(
            f"{owner}(target_size) must be an int when keep_aspect_ratio is True; got target_size={target_size!r}"
        )
    target_size = checks.integer(owner, "target_size", target_size, low=1)
    min_size = 0 if min_size is None else checks.integer(owner, "min_size", min_size, high=target_size)
    max_size = 0 if max_size is None else checks.integer(owner, "max_size", max_size)
    if 0 < max_size < target_size:
        raise ArgumentError(
            f"{owner}(max_size) must be 0 or >= target_size ({target_size}); got max_size={max_size!r}"
        )
    resize_longer = checks.choice(owner, "resize_side", resize_side, ("shorter", "longer")) == "longer"
    out, sizes = [], []
    for image in images:
        h, w = image.shape[:2]
        res_w, res_h = resized_size_keep_aspect_ratio(h, w, target_size, min_size, max_size, resize_longer)
        out.append(_cv_resize(image, res_w, res_h, interp))
        sizes.append((h, w, res_h, res_w))
    new_size = np.asarray([(s[3], s[2]) for s in sizes], dtype=np.int32)
    return out, _scales(sizes), new_size


def _deprecated_resize_args(
    color_space: str | None, interp_type: str | None, resize_shorter: int, resize_x: int, resize_y: int
) -> dict[str, Any]:
    """What OneFlow's deprecated ``Resize`` arguments stand for (an empty dict: none used)."""
    owner = "image.Resize"
    new: dict[str, Any] = {}
    if color_space is not None:
        new["channels"] = _COLOR_CHANNELS[
            checks.choice(owner, "color_space", str(color_space).upper(), ("RGB", "BGR", "GRAY"))
        ]
    if interp_type is not None:
        names = {"Linear": "bilinear", "NN": "nearest_neighbor", "Cubic": "bicubic"}
        new["interpolation_type"] = names[checks.choice(owner, "interp_type", interp_type, tuple(names))]
    if resize_x > 0 and resize_y > 0:
        new.update(target_size=(resize_x, resize_y), keep_aspect_ratio=False)
    if resize_shorter > 0:
        new.update(target_size=resize_shorter, keep_aspect_ratio=True, resize_side="shorter")
    if new:
        warnings.warn(
            f"image.Resize: {', '.join(sorted(new))} set from deprecated arguments (color_space, interp_type, "
            "resize_shorter, resize_x/resize_y); use target_size, channels and interpolation_type",
            DeprecationWarning,
            stacklevel=3,
        )
    return new


def resize(
    images: ImageBatch,
    target_size: int | Sequence[int] | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
    keep_aspect_ratio: bool = False,
    resize_side: str = "shorter",
    channels: int = 3,
    dtype: Any = None,
    interpolation_type: str = "auto",
    color_space: str | None = None,
    interp_type: str | None = None,
    resize_shorter: int = 0,
    resize_x: int = 0,
    resize_y: int = 0,
) -> Any:
    """OneFlow's ``flow.image.Resize`` (``image.resize``, ``image_resize``).

    - ``keep_aspect_ratio=False``: every image becomes ``target_size = (width, height)``;
      returns ``(images, scale, None)`` with ``images`` a dense ``(N, height, width,
      channels)`` array of ``dtype`` (default uint8; float32 also) and ``scale`` an ``(N, 2)``
      float32 array of ``[new_w / w, new_h / h]``. ``channels`` must match the images'.
    - ``keep_aspect_ratio=True``: ``target_size`` is an int, the side named by ``resize_side``
      becomes it (:func:`resized_size_keep_aspect_ratio`, with ``max_size`` / ``min_size``);
      returns ``(images, scale, new_size)``: a list of HWC images of the input dtype, the
      ``(N, 2)`` float32 scales and the ``(N, 2)`` int32 ``[new_w, new_h]``.

    ``interpolation_type`` is ``"auto"`` (bilinear up, area down), ``"bilinear"``,
    ``"nearest_neighbor"`` (``"nn"``), ``"bicubic"`` or ``"area"``. OneFlow's deprecated
    arguments keep their meaning (``color_space`` sets ``channels``; ``interp_type`` is
    ``"Linear"``/``"NN"``/``"Cubic"``; ``resize_x``/``resize_y`` a fixed size;
    ``resize_shorter`` the shorter side) and, as in OneFlow, then only the images are
    returned.
    """
    deprecated = _deprecated_resize_args(color_space, interp_type, resize_shorter, resize_x, resize_y)
    target_size = deprecated.get("target_size", target_size)
    keep_aspect_ratio = deprecated.get("keep_aspect_ratio", keep_aspect_ratio)
    channels = deprecated.get("channels", channels)
    interp = deprecated.get("interpolation_type", interpolation_type)
    owner = "image.Resize"
    checks.flag(owner, "keep_aspect_ratio", keep_aspect_ratio)
    checks.choice(owner, "interpolation_type", interp, tuple(_INTERPOLATIONS))
    imgs = _images(owner, images)
    result: tuple[Any, np.ndarray, np.ndarray | None]
    if keep_aspect_ratio:
        result = _resize_keep(
            imgs, target_size, min_size, max_size, deprecated.get("resize_side", resize_side), interp
        )
    else:
        out_dtype = _UINT8 if dtype is None else as_dtype(dtype, "dtype")
        result = (*_resize_fixed(imgs, target_size, channels, out_dtype, interp), None)
    return result[0] if deprecated else result


def image_target_resize(
    images: ImageBatch,
    target_size: int,
    min_size: int | None = None,
    max_size: int | None = None,
    resize_side: str = "shorter",
    interpolation_type: str = "auto",
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """OneFlow's ``flow.image.target_resize``: :func:`resize` with ``keep_aspect_ratio=True``,
    returning ``(images, new_size, scale)`` (OneFlow's order for this op)."""
    out, scale, new_size = resize(
        images,
        target_size=target_size,
        min_size=min_size,
        max_size=max_size,
        keep_aspect_ratio=True,
        resize_side=resize_side,
        interpolation_type=interpolation_type,
    )
    return out, new_size, scale


# ----------------------------------------------------------------------------- crop, mirror, normalize


def _crop_offset(extent: int, crop: int, pos: float) -> int:
    """OneFlow's ``(in - out) * crop_pos``, in float32, truncated."""
    return int(np.float32(extent - crop) * np.float32(pos))


def _crop_batch(
    owner: str, images: ImageBatch, crop_h: int, crop_w: int, pos_y: float, pos_x: float, channels: int
) -> np.ndarray:
    """The crop windows of all images as one ``(N, h, w, C)`` uint8 array (views when dense)."""
    if isinstance(images, np.ndarray):
        _images(owner, images[:1], (_UINT8,))
        n, in_h, in_w, c = images.shape
        h = in_h if crop_h == 0 or crop_w == 0 else min(crop_h, in_h)
        w = in_w if crop_h == 0 or crop_w == 0 else min(crop_w, in_w)
        y, x = _crop_offset(in_h, h, pos_y), _crop_offset(in_w, w, pos_x)
        if c != channels:
            raise ArgumentError(
                f"{owner}(color_space) means {channels} channels; got images of shape {images.shape}"
            )
        return images[:, y : y + h, x : x + w]
    imgs = _images(owner, images, (_UINT8,))
    if crop_h == 0 or crop_w == 0:
        raise ArgumentError(
            f"{owner}(crop_h, crop_w) must both be > 0 for a list of images; got crop_h={crop_h}, crop_w={crop_w}"
        )
    out = np.empty((len(imgs), crop_h, crop_w, channels), dtype=np.uint8)
    for i, im in enumerate(imgs):
        in_h, in_w, c = im.shape
        if c != channels or in_h < crop_h or in_w < crop_w:
            raise ArgumentError(
                f"{owner}(crop_h, crop_w) must fit every image with {channels} channels; got crop_h={crop_h}, "
                f"crop_w={crop_w} and images[{i}] of shape {im.shape}"
            )
        y, x = _crop_offset(in_h, crop_h, pos_y), _crop_offset(in_w, crop_w, pos_x)
        out[i] = im[y : y + crop_h, x : x + crop_w]
    return out


def _normalize_into(
    crops: np.ndarray, mirror: np.ndarray | None, mean: np.ndarray, inv_std: np.ndarray, nchw: bool
) -> np.ndarray:
    """``(float32(x) - mean[c]) * inv_std[c]`` of the (mirrored) crops, in the output layout.

    One cast-copy per image (mirrored and laid out as it goes), then two in-place passes
    whose inner loops run over whole rows (per-channel planes, or rows tiled with the
    channel values): numpy's loops over a trailing axis of 3 would be several times slower.
    """
    n, h, w, c = crops.shape
    out = np.empty((n, c, h, w) if nchw else (n, h, w, c), dtype=np.float32)
    for i in range(n):
        src = crops[i, :, ::-1] if mirror is not None and mirror[i] else crops[i]
        out[i] = src.transpose(2, 0, 1) if nchw else src
    if nchw:
        out -= mean[:, None, None]
        out *= inv_std[:, None, None]
    else:
        rows = out.reshape(n, h, w * c)
        rows -= np.tile(mean, w)
        rows *= np.tile(inv_std, w)
    return out


def crop_mirror_normalize(
    images: ImageBatch,
    mirror: Any = None,
    color_space: str = "BGR",
    output_layout: str = "NCHW",
    crop_h: int = 0,
    crop_w: int = 0,
    crop_pos_y: float = 0.5,
    crop_pos_x: float = 0.5,
    mean: Sequence[float] = (0.0,),
    std: Sequence[float] = (1.0,),
    output_dtype: Any = np.float32,
) -> np.ndarray:
    """OneFlow's ``flow.image.CropMirrorNormalize`` (``image.crop_mirror_normalize``).

    Crops ``crop_h x crop_w`` at ``y = int((H - crop_h) * crop_pos_y)``, ``x = int((W -
    crop_w) * crop_pos_x)``, mirrors horizontally the images whose ``mirror`` value (an int8
    vector, one per image, e.g. :func:`coin_flip`'s) is non-zero, and returns
    ``(float32(pixel) - mean[c]) * (1 / std[c])`` as a float32 array in ``output_layout``
    (``"NCHW"`` or ``"NHWC"``). ``mean`` and ``std`` hold 1 value or one per channel
    (``color_space`` ``"BGR"``/``"RGB"``: 3, ``"GRAY"``: 1).

    A dense uint8 NHWC batch (OneFlow's ``crop_mirror_normalize_from_uint8``) with
    ``crop_h`` or ``crop_w`` 0 is not cropped, and a crop larger than the images shrinks to
    them. A list of uint8 images (``..._from_tensorbuffer``) needs both crop sizes, and each
    image must be at least that large. ``output_dtype`` must be float32, as in OneFlow.
    """
    owner = "image.CropMirrorNormalize"
    channels = _COLOR_CHANNELS[checks.choice(owner, "color_space", color_space, tuple(_COLOR_CHANNELS))]
    nchw = checks.choice(owner, "output_layout", output_layout, ("NCHW", "NHWC")) == "NCHW"
    crop_h = checks.integer(owner, "crop_h", crop_h)
    crop_w = checks.integer(owner, "crop_w", crop_w)
    pos_y = checks.number(owner, "crop_pos_y", crop_pos_y, low=0, high=1)
    pos_x = checks.number(owner, "crop_pos_x", crop_pos_x, low=0, high=1)
    mean_v = np.broadcast_to(_floats(owner, "mean", mean, (1, channels)), (channels,))
    std_v = _floats(owner, "std", std, (1, channels))
    if not np.all(std_v != 0):
        raise ArgumentError(f"{owner}(std) must be non-zero; got std={std!r}")
    inv_std = np.broadcast_to(np.float32(1) / std_v, (channels,))
    if as_dtype(output_dtype, "output_dtype") != _FLOAT32:
        raise ArgumentError(
            f"{owner}(output_dtype) must be float32 (as in OneFlow); got output_dtype={output_dtype!r}"
        )
    crops = _crop_batch(owner, images, crop_h, crop_w, pos_y, pos_x, channels)
    flags = None if mirror is None else _per_image(owner, "mirror", mirror, len(crops))
    return _normalize_into(crops, flags, mean_v, inv_std, nchw)


# ----------------------------------------------------------------------------- random crop, flip, coin flip


def _fallback_window(
    height: int, width: int, area_hi: float, min_wh: float, max_wh: float, max_w: int, max_h: int
) -> tuple[int, int]:
    """OneFlow's window after ``num_attempts`` misses: the whole image, narrowed to the
    aspect-ratio range, shrunk to ``area_hi`` of the image."""
    ratio = np.float32(width) / np.float32(height)
    if ratio > max_wh:
        h, w = height, max_w
    elif ratio < min_wh:
        h, w = max_h, width
    else:
        h, w = height, width
    scale = min(np.float32(1), np.float32(area_hi * width * height) / np.float32(h * w))
    root = float(np.sqrt(np.float32(scale)))
    return max(1, int(h * root)), max(1, int(w * root))


def _crop_params(
    num_attempts: Any, random_area: Any, random_aspect_ratio: Any
) -> tuple[int, float, float, Any, Any]:
    """The checked ``(num_attempts, area_lo, area_hi, min_wh, max_wh)`` (ratios float32)."""
    owner = "image.random_crop"
    attempts = checks.integer(owner, "num_attempts", num_attempts, low=1)
    area_lo, area_hi = _range(owner, "random_area", random_area)
    min_wh, max_wh = (np.float32(v) for v in _range(owner, "random_aspect_ratio", random_aspect_ratio))
    return attempts, area_lo, area_hi, min_wh, max_wh


def random_crop_windows(
    heights: Sequence[int],
    widths: Sequence[int],
    rng: RngLike = None,
    num_attempts: int = 10,
    random_area: Sequence[float] = (0.08, 1.0),
    random_aspect_ratio: Sequence[float] = (0.75, 1.333333),
) -> np.ndarray:
    """The ``(N, 4)`` int64 windows ``(y, x, h, w)`` of :func:`random_crop_window` for ``N``
    images of ``heights[i] x widths[i]`` at once.

    Vectorized over the batch: every image draws its ``num_attempts`` area fractions and
    ratios up front and takes its first accepted one, so a batch costs a few numpy calls
    instead of ~60 us of scalar arithmetic per image.
    """
    params = _crop_params(num_attempts, random_area, random_aspect_ratio)
    return _windows(np.asarray(heights, np.int64), np.asarray(widths, np.int64), _rng(rng), params)


def _windows(H: np.ndarray, W: np.ndarray, gen: np.random.Generator, params: tuple) -> np.ndarray:
    num_attempts, area_lo, area_hi, min_wh, max_wh = params
    f32 = np.float32
    n = len(H)
    min_area = (H * W).astype(f32) * f32(area_lo)
    max_w = np.maximum(1, (H.astype(f32) * max_wh).astype(np.int64))
    max_h = np.maximum(1, (W.astype(f32) * (f32(1) / min_wh)).astype(np.int64))
    narrow = (H * max_w).astype(f32) < min_area
    flat = ~narrow & ((W * max_h).astype(f32) < min_area)
    # one row of draws per image (its attempts' areas, its ratios, its anchor), so an image's
    # window does not depend on the batch size
    u = gen.random((n, 2 * num_attempts + 2))
    fraction = (area_lo + (area_hi - area_lo) * u[:, :num_attempts]).astype(f32)
    area = fraction * (H * W).astype(f32)[:, None]
    log_lo, log_hi = math.log(min_wh), math.log(max_wh)
    ratio = np.exp(log_lo + (log_hi - log_lo) * u[:, num_attempts : 2 * num_attempts]).astype(f32)
    w = np.maximum(1, np.floor(np.sqrt(area * ratio).astype(np.float64) + 0.5)).astype(np.int64)
    h = np.maximum(1, np.floor(np.sqrt(area / ratio).astype(np.float64) + 0.5)).astype(np.int64)
    fits = w.astype(f32) / h.astype(f32)
    ok = (w <= W[:, None]) & (h <= H[:, None]) & (min_wh <= fits) & (fits <= max_wh)
    first = ok.argmax(axis=1)
    out_h, out_w = h[np.arange(n), first], w[np.arange(n), first]
    out_h[narrow], out_w[narrow] = H[narrow], max_w[narrow]
    out_h[flat], out_w[flat] = max_h[flat], W[flat]
    for i in np.flatnonzero(~narrow & ~flat & ~ok.any(axis=1)):
        out_h[i], out_w[i] = _fallback_window(
            int(H[i]), int(W[i]), area_hi, float(min_wh), float(max_wh), int(max_w[i]), int(max_h[i])
        )
    # floor(u * count): uniform over the anchors that fit
    y = (u[:, -2] * (H - out_h + 1)).astype(np.int64)
    x = (u[:, -1] * (W - out_w + 1)).astype(np.int64)
    return np.stack([y, x, out_h, out_w], axis=1)


def random_crop_window(
    height: int,
    width: int,
    rng: RngLike = None,
    num_attempts: int = 10,
    random_area: Sequence[float] = (0.08, 1.0),
    random_aspect_ratio: Sequence[float] = (0.75, 1.333333),
) -> tuple[int, int, int, int]:
    """``(y, x, h, w)``: the crop window OneFlow's ``RandomCropGenerator`` draws for an image
    of ``height x width`` (its ``image_random_crop`` and ``OFRecordImageDecoderRandomCrop``),
    in float32 arithmetic as the kernel.

    Up to ``num_attempts`` times: draw an area fraction uniformly from ``random_area`` and a
    width/height ratio log-uniformly from ``random_aspect_ratio``; the window is
    ``w = round(sqrt(area * ratio))``, ``h = round(sqrt(area / ratio))``, accepted when it fits
    and its rounded ratio is still in range. Images too narrow or too flat for the smallest
    area take the widest window in range at once; after ``num_attempts`` misses the window is
    :func:`_fallback_window`'s. The anchor is uniform over the positions that fit.
    """
    checks.integer("image.random_crop", "height", height, low=1)
    checks.integer("image.random_crop", "width", width, low=1)
    return _window(height, width, _rng(rng), _crop_params(num_attempts, random_area, random_aspect_ratio))


def _window(height: int, width: int, gen: np.random.Generator, params: tuple) -> tuple[int, int, int, int]:
    """One window by the rule of :func:`random_crop_windows`, from the same draws (a row of
    ``2 * num_attempts + 2`` uniforms), in scalar code: a tenth of the vectorized path's
    numpy calls for a single image."""
    num_attempts, area_lo, area_hi, min_wh, max_wh = params
    f32 = np.float32
    u = gen.random(2 * num_attempts + 2).tolist()  # the draws' layout of random_crop_windows
    min_area = f32(width * height) * f32(area_lo)
    max_w = max(1, int(f32(height) * max_wh))
    max_h = max(1, int(f32(width) * (f32(1) / min_wh)))
    if height * max_w < min_area:
        h, w = height, max_w
    elif width * max_h < min_area:
        h, w = max_h, width
    else:
        log_lo, log_hi = math.log(min_wh), math.log(max_wh)
        for k in range(num_attempts):
            target_area = f32(area_lo + (area_hi - area_lo) * u[k]) * f32(height * width)
            ratio = f32(math.exp(log_lo + (log_hi - log_lo) * u[num_attempts + k]))
            w = max(1, math.floor(float(np.sqrt(target_area * ratio)) + 0.5))
            h = max(1, math.floor(float(np.sqrt(target_area / ratio)) + 0.5))
            if w <= width and h <= height and min_wh <= f32(w) / f32(h) <= max_wh:
                break
        else:
            h, w = _fallback_window(height, width, area_hi, float(min_wh), float(max_wh), max_w, max_h)
    return int(u[-2] * (height - h + 1)), int(u[-1] * (width - w + 1)), h, w


def random_crop(
    images: ImageBatch,
    num_attempts: int = 10,
    random_area: Sequence[float] = (0.08, 1.0),
    random_aspect_ratio: Sequence[float] = (0.75, 1.333333),
    rng: RngLike = None,
) -> list[np.ndarray]:
    """OneFlow's ``flow.image.random_crop``: each image cropped to its own
    :func:`random_crop_window`; returns a list of HWC images (new arrays)."""
    params = _crop_params(num_attempts, random_area, random_aspect_ratio)
    imgs = _images("image.random_crop", images)
    heights = np.array([im.shape[0] for im in imgs], np.int64)
    widths = np.array([im.shape[1] for im in imgs], np.int64)
    windows = _windows(heights, widths, _rng(rng), params)
    return [im[y : y + h, x : x + w].copy() for im, (y, x, h, w) in zip(imgs, windows)]


def flip(images: ImageBatch, flip_code: Any) -> ImageBatch:
    """OneFlow's ``flow.image.flip``: ``flip_code`` (one int for all images or one per image)
    is 0 (none), 1 (horizontal), 16 (vertical) or 17 (both). A list stays a list, a dense
    batch stays dense."""
    owner = "image.flip"
    imgs = _images(owner, images)
    if isinstance(flip_code, numbers.Integral) and not isinstance(flip_code, bool):
        codes = np.full(len(imgs), int(flip_code))
    else:
        codes = _per_image(owner, "flip_code", flip_code, len(imgs)).astype(np.int64)
    bad = [int(c) for c in codes if c not in _FLIP_CODES]
    if bad:
        raise ArgumentError(f"{owner}(flip_code) must be 0, 1, 16 or 17; got flip_code={flip_code!r}")
    out = []
    for im, code in zip(imgs, codes):
        rows = slice(None, None, -1) if code & 0x10 else slice(None)
        cols = slice(None, None, -1) if code & 0x01 else slice(None)
        out.append(np.ascontiguousarray(im[rows, cols]))
    return _restack(images, out)


def coin_flip(batch_size: int = 1, probability: float = 0.5, rng: RngLike = None) -> np.ndarray:
    """OneFlow's ``flow.random.coin_flip``: ``batch_size`` int8 values, each 1 with
    ``probability`` (a Bernoulli draw per value), else 0."""
    batch_size = checks.integer("random.coin_flip", "batch_size", batch_size, low=1)
    p = checks.number("random.coin_flip", "probability", probability, low=0, high=1)
    return (_rng(rng).random(batch_size) < p).astype(np.int8)


# ----------------------------------------------------------------------------- normalize, batch align


def image_normalize(images: ImageBatch, std: Sequence[float], mean: Sequence[float]) -> ImageBatch:
    """OneFlow's ``flow.image.normalize`` (note the argument order: ``std``, then ``mean``):
    ``(x - mean[c]) / std[c]`` on float32 images, one value per channel."""
    owner = "image.normalize"
    imgs = _images(owner, images, (_FLOAT32,))
    channels = imgs[0].shape[2]
    std_v = _floats(owner, "std", std, (channels,))
    mean_v = _floats(owner, "mean", mean, (channels,))
    if not np.all(std_v != 0):
        raise ArgumentError(f"{owner}(std) must be non-zero; got std={std!r}")
    out = []
    for i, im in enumerate(imgs):
        if im.shape[2] != channels:
            raise ArgumentError(
                f"{owner}(images) must share one channel count; got images[{i}] of shape {im.shape}"
            )
        out.append((im - mean_v) / std_v)
    return _restack(images, out)


def image_batch_align(images: ImageBatch, shape: Sequence[int], dtype: Any, alignment: int) -> np.ndarray:
    """OneFlow's ``flow.image.batch_align``: the images, top-left aligned and zero-padded,
    in one ``(N, H, W, C)`` array of ``dtype``, ``H``/``W`` the largest height/width rounded
    up to a multiple of ``alignment``. ``shape`` is the static ``(H, W, C)`` bound (OneFlow's
    blob size): the padded images must fit in ``H*W`` pixels and have ``C`` channels."""
    owner = "image.batch_align"
    imgs = _images(owner, images)
    bound = checks.int_list(owner, "shape", shape, low=1)
    alignment = checks.integer(owner, "alignment", alignment, low=1)
    out_dtype = as_dtype(dtype, "dtype")
    if len(bound) != 3 or out_dtype not in (_UINT8, _FLOAT32):
        raise ArgumentError(
            f"{owner}(shape, dtype) must be (H, W, C) and uint8 or float32; got {shape!r}, {dtype!r}"
        )
    height = -(-max(im.shape[0] for im in imgs) // alignment) * alignment
    width = -(-max(im.shape[1] for im in imgs) // alignment) * alignment
    if height * width > bound[0] * bound[1] or any(im.shape[2] != bound[2] for im in imgs):
        raise ArgumentError(
            f"{owner}(shape) must bound the aligned images ({height}x{width}, {bound[2]} channels); got shape={shape!r}"
        )
    out = np.zeros((len(imgs), height, width, bound[2]), dtype=out_dtype)
    for i, im in enumerate(imgs):
        out[i, : im.shape[0], : im.shape[1]] = im
    return out
