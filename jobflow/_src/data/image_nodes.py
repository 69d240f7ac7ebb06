"""OneFlow's ``flow.image`` ops (and ``ofrecord_image_classification_reader``) as data ops.

Each builds data nodes (``nodes.py``) whose ``compute`` calls the host functions of
``image_ops.py`` on one batch; a random op draws from its node's stream
(``Batch.rng``). A batch of images is a ``"list"`` node (images of varying sizes,
OneFlow's tensor buffers) or a ``"tensor"`` node (a dense NHWC batch, e.g. after a
fixed-size ``Resize``); a dense result is the step's array in a job body. Dense
intermediate results that only data ops read become hidden inputs the step does not
use, which XLA drops (they are never copied to the devices).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jobflow._src.core import checks
from jobflow._src.core import dtypes as _dtypes
from jobflow._src.core.errors import ArgumentError
from jobflow._src.data import image_ops as _image
from jobflow._src.data import nodes as _nodes
from jobflow._src.data import record_ops as _records

__all__ = [
    "Resize",
    "target_resize",
    "CropMirrorNormalize",
    "random_crop",
    "flip",
    "normalize",
    "ofrecord_image_classification_reader",
]

_IMAGES = ("list", "tensor")
_CHANNELS = {"BGR": 3, "RGB": 3, "GRAY": 1}


def _part(parent: _nodes.DataNode, index: int, kind: str, shape: tuple | None, dtype: Any) -> Any:
    """Output ``index`` of a node whose value is a tuple, as its own node (emitted)."""

    def compute(inputs: list, _batch: _nodes.Batch) -> Any:
        return inputs[0][index]

    node = _nodes.DataNode(
        f"{parent.op}[{index}]",
        (parent,),
        kind,
        parent.batch_size,
        compute,
        shape,
        None if dtype is None else np.dtype(dtype),
        key=(index,),
    )
    return _nodes.emit(node)


def _like(
    owner: str, source: _nodes.DataNode, compute: Callable, *, seed: int | None = None, key: tuple = ()
) -> Any:
    """A node of the same kind, shape and dtype as ``source`` (a flip, a normalization)."""
    node = _nodes.DataNode(
        owner,
        (source,),
        source.kind,
        source.batch_size,
        compute,
        source.sample_shape,
        source.dtype,
        seed=seed,
        key=key,
    )
    return _nodes.emit(node)


def Resize(
    image: Any,
    target_size: int | Sequence[int] | None = None,
    min_size: int | None = None,
    max_size: int | None = None,
    keep_aspect_ratio: bool = False,
    resize_side: str = "shorter",
    channels: int = 3,
    dtype: Any = None,
    interpolation_type: str = "auto",
    name: str | None = None,
    color_space: str | None = None,
    interp_type: str | None = None,
    resize_shorter: int = 0,
    resize_x: int = 0,
    resize_y: int = 0,
) -> Any:
    """OneFlow's ``flow.image.Resize``: ``(images, scale, new_size)`` (``image_ops.resize``).

    To a fixed ``target_size = (width, height)`` the images are a dense ``(N, height,
    width, channels)`` batch and ``new_size`` is None; with ``keep_aspect_ratio`` they stay
    a list and ``new_size`` is an ``(N, 2)`` int32 batch. With OneFlow's deprecated
    arguments (``resize_x``/``resize_y``, ``resize_shorter``, ``color_space``,
    ``interp_type``) only the images are returned, as in OneFlow.
    """
    owner = "image.Resize"
    source = _nodes.node_of(image, owner, "image", _IMAGES)
    new = _image._deprecated_resize_args(color_space, interp_type, resize_shorter, resize_x, resize_y)
    deprecated = bool(new)  # warned once, here; then only the images are returned, as in OneFlow
    kwargs: dict[str, Any] = dict(
        target_size=target_size,
        min_size=min_size,
        max_size=max_size,
        keep_aspect_ratio=keep_aspect_ratio,
        resize_side=resize_side,
        channels=channels,
        dtype=dtype,
        interpolation_type=interpolation_type,
    )
    kwargs.update(new)
    probe = _image.resize([np.zeros((2, 2, int(kwargs["channels"])), np.uint8)], **kwargs)
    images = probe[0]

    def compute(inputs: list, _batch: _nodes.Batch) -> Any:
        return _image.resize(inputs[0], **kwargs)

    whole = _nodes.DataNode(
        owner, (source,), "tuple", source.batch_size, compute, name=name, key=tuple(sorted(kwargs.items()))
    )
    if isinstance(images, np.ndarray):  # a fixed size: a dense batch
        out = _part(whole, 0, "tensor", tuple(images.shape[1:]), images.dtype)
    else:
        out = _part(whole, 0, "list", None, None)
    if deprecated:
        return out
    scale = _part(whole, 1, "tensor", (2,), np.float32)
    new_size = None if probe[2] is None else _part(whole, 2, "tensor", (2,), np.int32)
    return out, scale, new_size


def target_resize(
    images: Any,
    target_size: int,
    min_size: int | None = None,
    max_size: int | None = None,
    resize_side: str = "shorter",
    interpolation_type: str = "auto",
    name: str | None = None,
) -> tuple:
    """OneFlow's ``flow.image.target_resize``: ``(images, new_size, scale)``, the images
    resized keeping their aspect ratio (a list), the sizes ``(N, 2)`` int32, the scales
    ``(N, 2)`` float32."""
    owner = "image.target_resize"
    source = _nodes.node_of(images, owner, "images", _IMAGES)
    args = (target_size, min_size, max_size, resize_side, interpolation_type)
    _image.image_target_resize([np.zeros((2, 2, 3), np.uint8)], *args)  # checks the arguments

    def compute(inputs: list, _batch: _nodes.Batch) -> Any:
        return _image.image_target_resize(inputs[0], *args)

    whole = _nodes.DataNode(owner, (source,), "tuple", source.batch_size, compute, name=name, key=args)
    return (
        _part(whole, 0, "list", None, None),
        _part(whole, 1, "tensor", (2,), np.int32),
        _part(whole, 2, "tensor", (2,), np.float32),
    )


def _crop_size(owner: str, source: _nodes.DataNode, crop_h: int, crop_w: int) -> tuple[int, int]:
    """The output's height and width (``image_ops.crop_mirror_normalize``'s rule)."""
    crop_h = checks.integer(owner, "crop_h", crop_h)
    crop_w = checks.integer(owner, "crop_w", crop_w)
    if source.kind == "tensor" and source.sample_shape is not None and len(source.sample_shape) == 3:
        in_h, in_w, _ = source.sample_shape
        if crop_h == 0 or crop_w == 0:
            return in_h, in_w
        return min(crop_h, in_h), min(crop_w, in_w)
    if source.kind == "tensor":
        raise ArgumentError(f"{owner}(input_blob) must be NHWC images; got {source!r}")
    if crop_h == 0 or crop_w == 0:
        raise ArgumentError(
            f"{owner}(crop_h, crop_w) must both be > 0 for images of varying sizes (resize them to a "
            f"fixed size first, or crop); got crop_h={crop_h}, crop_w={crop_w}"
        )
    return crop_h, crop_w


def CropMirrorNormalize(
    input_blob: Any,
    mirror_blob: Any = None,
    color_space: str = "BGR",
    output_layout: str = "NCHW",
    crop_h: int = 0,
    crop_w: int = 0,
    crop_pos_y: float = 0.5,
    crop_pos_x: float = 0.5,
    mean: Sequence[float] = (0.0,),
    std: Sequence[float] = (1.0,),
    output_dtype: Any = np.float32,
    name: str | None = None,
) -> Any:
    """OneFlow's ``flow.image.CropMirrorNormalize``: a dense float32 batch in
    ``output_layout`` (``image_ops.crop_mirror_normalize``). ``mirror_blob``: a
    ``flow.random.coin_flip`` (drawn on the host with the batch) or another int8 data
    output, one value per image. In a job body: the step's array of the batch."""
    owner = "image.CropMirrorNormalize"
    source = _nodes.node_of(input_blob, owner, "input_blob", _IMAGES)
    inputs = [source]
    if mirror_blob is not None:
        inputs.append(_nodes.node_of(mirror_blob, owner, "mirror_blob", ("tensor",)))
    h, w = _crop_size(owner, source, crop_h, crop_w)
    kwargs: dict[str, Any] = dict(
        color_space=color_space,
        output_layout=output_layout,
        crop_h=crop_h,
        crop_w=crop_w,
        crop_pos_y=crop_pos_y,
        crop_pos_x=crop_pos_x,
        mean=tuple(mean),
        std=tuple(std),
        output_dtype=output_dtype,
    )
    c = _CHANNELS.get(color_space, 3)
    _image.crop_mirror_normalize(np.zeros((1, h, w, c), np.uint8), None, **kwargs)  # checks the arguments

    def compute(values: list, _batch: _nodes.Batch) -> np.ndarray:
        return _image.crop_mirror_normalize(values[0], values[1] if len(values) > 1 else None, **kwargs)

    shape = (c, h, w) if output_layout == "NCHW" else (h, w, c)
    node = _nodes.DataNode(
        owner,
        tuple(inputs),
        "tensor",
        source.batch_size,
        compute,
        shape,
        np.dtype(np.float32),
        name=name,
        key=tuple(kwargs.items()),
    )
    return _nodes.emit(node)


def random_crop(
    input_blob: Any,
    num_attempts: int = 10,
    seed: int | None = None,
    random_area: Sequence[float] | None = None,
    random_aspect_ratio: Sequence[float] | None = None,
    name: str = "ImageRandomCrop",
) -> Any:
    """OneFlow's ``flow.image.random_crop``: each image cropped to a random window
    (``image_ops.random_crop``; defaults area ``[0.08, 1]``, aspect ratio ``[3/4, 4/3]``),
    drawn from the node's stream (``seed``, else the job's). The result is a list."""
    owner = "image.random_crop"
    source = _nodes.node_of(input_blob, owner, "input_blob", _IMAGES)
    if seed is not None:
        seed = checks.integer(owner, "seed", seed)
    area = (0.08, 1.0) if random_area is None else tuple(random_area)
    ratio = (0.75, 1.333333) if random_aspect_ratio is None else tuple(random_aspect_ratio)
    _image.random_crop([np.zeros((2, 2, 3), np.uint8)], num_attempts, area, ratio, rng=0)  # checks

    def compute(inputs: list, batch: _nodes.Batch) -> list:
        return _image.random_crop(inputs[0], num_attempts, area, ratio, rng=batch.rng)

    node = _nodes.DataNode(
        owner,
        (source,),
        "list",
        source.batch_size,
        compute,
        seed=seed,
        name=name,
        key=(num_attempts, area, ratio),
    )
    return _nodes.emit(node)


def flip(image: Any, flip_code: Any, name: str | None = None) -> Any:
    """OneFlow's ``flow.image.flip``: ``flip_code`` 0 (none), 1 (horizontal), 16
    (vertical) or 17 (both), one int for all images or a data output with one per image
    (e.g. ``flow.random.coin_flip``). The images keep their kind (a list or a dense batch)."""
    owner = "image.flip"
    source = _nodes.node_of(image, owner, "image", _IMAGES)
    if isinstance(flip_code, int) and not isinstance(flip_code, bool):
        code = flip_code
        _image.flip([np.zeros((2, 2, 3), np.uint8)], code)  # checks the code
        return _like(owner, source, lambda inputs, _b: _image.flip(inputs[0], code), key=(code,))
    codes = _nodes.node_of(flip_code, owner, "flip_code", ("tensor",))
    node = _nodes.DataNode(
        owner,
        (source, codes),
        source.kind,
        source.batch_size,
        lambda inputs, _b: _image.flip(inputs[0], inputs[1]),
        source.sample_shape,
        source.dtype,
        name=name,
    )
    return _nodes.emit(node)


def normalize(image: Any, std: Sequence[float], mean: Sequence[float], name: str | None = None) -> Any:
    """OneFlow's ``flow.image.normalize`` (``std`` first): ``(x - mean[c]) / std[c]`` on
    float32 images; they keep their kind."""
    owner = "image.normalize"
    source = _nodes.node_of(image, owner, "image", _IMAGES)
    std_t, mean_t = tuple(std), tuple(mean)
    _image.image_normalize([np.zeros((1, 1, len(std_t)), np.float32)], std_t, mean_t)  # checks
    return _like(
        owner,
        source,
        lambda inputs, _b: _image.image_normalize(inputs[0], std_t, mean_t),
        key=(std_t, mean_t),
    )


def ofrecord_image_classification_reader(
    ofrecord_dir: str,
    image_feature_name: str,
    label_feature_name: str,
    batch_size: int = 1,
    data_part_num: int = 1,
    part_name_prefix: str = "part-",
    part_name_suffix_length: int = -1,
    random_shuffle: bool = False,
    shuffle_buffer_size: int = 1024,
    shuffle_after_epoch: bool = False,
    color_space: str = "BGR",
    decode_buffer_size_per_thread: int = 32,
    num_decode_threads_per_machine: int | None = None,
    name: str | None = None,
) -> tuple:
    """OneFlow's ``flow.data.ofrecord_image_classification_reader``: ``(images, labels)``,
    the decoded images (a list) and the int32 labels ``(batch_size,)``. The two decode
    tuning arguments are accepted and checked; jobflow's pipeline sizes its own threads."""
    owner = "data.ofrecord_image_classification_reader"
    checks.integer(owner, "decode_buffer_size_per_thread", decode_buffer_size_per_thread, low=1)
    if num_decode_threads_per_machine is not None:
        checks.integer(owner, "num_decode_threads_per_machine", num_decode_threads_per_machine, low=1)
    reader = _records.ofrecord_reader(
        ofrecord_dir,
        batch_size,
        data_part_num,
        part_name_prefix,
        part_name_suffix_length,
        random_shuffle,
        shuffle_buffer_size,
        shuffle_after_epoch,
        name,
    )
    images = _records.OFRecordImageDecoder(reader, image_feature_name, color_space)
    labels = _records.OFRecordRawDecoder(reader, label_feature_name, (), _dtypes.as_dtype("int32"))
    return images, labels
