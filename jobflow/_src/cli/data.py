"""``jobflow data convert``: numpy arrays or an image folder to an OFRecord dataset.

Inputs (one kind per call):

- ``.npz`` files and ``.npy`` files: each array is a feature (an ``.npz`` array keeps its
  name, an ``.npy`` file is named by its stem); the first axis indexes the records, so all
  arrays need the same first dimension. Record ``i`` holds ``array[i]`` flattened, in the
  list that fits its dtype (docs/data_format.md); ``--raw-bytes NAME`` stores feature
  ``NAME`` as one ``bytes`` value instead (``array[i].tobytes()``: compact for uint8 images).
- one directory with a subfolder per class (ImageNet's layout): each image file becomes a
  record ``{"encoded": the file's bytes as they are, "class/label": int32 label}``, labels
  numbered by the sorted class names from 0, as OneFlow-Benchmark's ImageNet records are.

Records are written round-robin over ``--part-num`` parts (``part-00000``, ...), in input
order or, with ``--shuffle``, in the order of a permutation seeded by ``--seed``. The
dataset appears complete or not at all. Exit status 0 on success, 1 with one ``error:``
line otherwise.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from jobflow._src.core.errors import JobflowError
from jobflow._src.data.ofrecord import OFRecordWriter, part_name

__all__ = ["add_arguments", "run", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
_KIND_OF = {"f": "float_list", "i": "int32_list", "u": "int32_list", "b": "int32_list"}


class _InputError(Exception):
    pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    convert = sub.add_parser(
        "convert",
        help="write numpy arrays (.npz/.npy) or an image folder (class subfolders) as OFRecord parts",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.add_argument("inputs", nargs="+", metavar="INPUT", help=".npz/.npy files, or one image folder")
    convert.add_argument("-o", "--output", required=True, help="the dataset directory to write")
    convert.add_argument("--part-num", type=int, default=1, help="number of part files (default 1)")
    convert.add_argument("--part-name-prefix", default="part-", help="part file prefix (default part-)")
    convert.add_argument(
        "--part-name-suffix-length",
        type=int,
        default=5,
        help="digits of the part number, zero-padded (default 5)",
    )
    convert.add_argument("--shuffle", action="store_true", help="write the records in a random order")
    convert.add_argument("--seed", type=int, default=0, help="seed of --shuffle's permutation (default 0)")
    convert.add_argument(
        "--raw-bytes",
        action="append",
        default=[],
        metavar="NAME",
        help="store array feature NAME as raw bytes",
    )
    convert.add_argument("--overwrite", action="store_true", help="replace existing part files")


# -- inputs --------------------------------------------------------------------------------


def _load_arrays(paths: list[str]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for path in paths:
        if not os.path.isfile(path):
            raise _InputError(f"{path!r} is not a file (give .npz/.npy files or one image folder)")
        try:
            if path.endswith(".npz"):
                with np.load(path, allow_pickle=False) as z:
                    loaded = {k: z[k] for k in z.files}
            elif path.endswith(".npy"):
                loaded = {
                    os.path.splitext(os.path.basename(path))[0]: np.load(
                        path, mmap_mode="r", allow_pickle=False
                    )
                }
            else:
                raise _InputError(f"{path!r}: expected a .npz or .npy file")
        except (ValueError, OSError) as e:
            raise _InputError(f"{path!r} is not a readable numpy file: {e}") from None
        for name, arr in loaded.items():
            if name in arrays:
                raise _InputError(f"feature {name!r} is given twice (second time in {path!r})")
            arrays[name] = arr
    if not arrays:
        raise _InputError("the inputs hold no arrays")
    lengths = {name: (a.shape[0] if a.ndim else None) for name, a in arrays.items()}
    if None in lengths.values() or len(set(lengths.values())) != 1:
        raise _InputError(
            f"every array's first axis indexes the records, so the lengths must agree; got {lengths}"
        )
    return arrays


def _image_files(folder: str) -> tuple[list[tuple[str, int]], list[str]]:
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    if not classes:
        raise _InputError(f"{folder!r} has no class subfolders (expected {folder}/<class>/<image file>)")
    files = []
    for label, cls in enumerate(classes):
        for root, dirs, names in os.walk(os.path.join(folder, cls)):
            dirs.sort()
            files += [
                (os.path.join(root, n), label) for n in sorted(names) if n.lower().endswith(IMAGE_EXTENSIONS)
            ]
    if not files:
        raise _InputError(
            f"{folder!r}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in its class subfolders"
        )
    return files, classes


def _array_records(
    arrays: dict[str, np.ndarray], raw: set[str], order: np.ndarray
) -> Iterator[dict[str, Any]]:
    for i in order:
        yield {name: (a[i].tobytes() if name in raw else np.asarray(a[i])) for name, a in arrays.items()}


def _image_records(files: list[tuple[str, int]], order: np.ndarray) -> Iterator[dict[str, Any]]:
    for i in order:
        path, label = files[i]
        with open(path, "rb") as f:
            data = f.read()
        if not data:
            raise _InputError(f"image file {path!r} is empty")
        yield {"encoded": data, "class/label": np.int32(label)}


# -- run -----------------------------------------------------------------------------------


def _plan(args: argparse.Namespace) -> tuple[int, Iterator[dict[str, Any]], list[str]]:
    """``(record count, records, summary lines)`` for the inputs."""
    if len(args.inputs) == 1 and os.path.isdir(args.inputs[0]):
        if args.raw_bytes:
            raise _InputError("--raw-bytes applies to numpy inputs; image files are stored as they are")
        files, classes = _image_files(args.inputs[0])
        n, make = len(files), lambda order: _image_records(files, order)
        counts = np.bincount([label for _, label in files], minlength=len(classes))
        lines = [f"  class/label {i}: {c} ({counts[i]} images)" for i, c in enumerate(classes)]
        lines.insert(0, '  features: "encoded" (bytes_list: the image file), "class/label" (int32_list)')
    else:
        arrays = _load_arrays(args.inputs)
        unknown = sorted(set(args.raw_bytes) - set(arrays))
        if unknown:
            raise _InputError(f"--raw-bytes {unknown}: no such feature; the features are {sorted(arrays)}")
        n = next(iter(arrays.values())).shape[0]
        make = lambda order: _array_records(arrays, set(args.raw_bytes), order)
        lines = [_describe(name, a, name in args.raw_bytes) for name, a in arrays.items()]
    order = np.random.default_rng(args.seed).permutation(n) if args.shuffle else np.arange(n)
    return n, make(order), lines


def _describe(name: str, a: np.ndarray, raw: bool) -> str:
    shape = tuple(a.shape[1:])
    kind = "bytes_list" if raw else _KIND_OF.get(a.dtype.kind, "?")
    if not raw and a.dtype.itemsize == 8:
        kind = {"f": "double_list", "i": "int64_list"}.get(a.dtype.kind, kind)
    if not raw and a.dtype.kind == "u" and a.dtype.itemsize == 4:
        kind = "int64_list"
    return f"  {name}: {a.dtype} {shape} -> {kind}; read with shape={shape}, dtype={a.dtype}"


def run(args: argparse.Namespace) -> int:
    if getattr(args, "data_command", None) != "convert":
        print("usage: jobflow data convert INPUT... -o OUTPUT (see jobflow data convert --help)")
        return 2
    try:
        if args.part_num < 1:
            raise _InputError(f"--part-num must be >= 1; got {args.part_num}")
        n, records, lines = _plan(args)
        if n == 0:
            raise _InputError("the inputs hold no records")
        with OFRecordWriter(
            args.output,
            args.part_num,
            args.part_name_prefix,
            args.part_name_suffix_length,
            overwrite=args.overwrite,
        ) as writer:
            for record in records:
                writer.write(record)
    except (_InputError, JobflowError, OSError) as e:
        print(f"error: {str(e).replace('pass overwrite=True', 'pass --overwrite')}")
        return 1
    last = part_name(args.part_num - 1, args.part_name_prefix, args.part_name_suffix_length)
    first = part_name(0, args.part_name_prefix, args.part_name_suffix_length)
    span = first if args.part_num == 1 else f"{first} .. {last}"
    print(f"wrote {writer.count} records to {args.output} in {args.part_num} parts ({span})")
    print("\n".join(lines))
    return 0
