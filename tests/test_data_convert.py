"""``jobflow data convert``: numpy arrays and image folders to OFRecord parts, read back
bitwise with the source and the decoders."""

import os

import cv2
import numpy as np
import pytest

from jobflow._src.cli.main import main
from jobflow._src.data import decoders
from jobflow._src.data.ofrecord import iter_records, parse_record
from jobflow._src.data.source import OFRecordSource


def convert(*argv):
    return main(["data", "convert", *map(str, argv)])


def all_records(out, part_num):
    return [r for p in range(part_num) for _, r in iter_records(os.path.join(out, f"part-{p:05d}"))]


def test_npz_round_trip_with_parts_and_raw_bytes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 4, 5), dtype=np.uint8)
    labels = rng.integers(0, 10, size=10).astype(np.int32)
    dense = rng.standard_normal((10, 3)).astype(np.float64)
    np.savez(tmp_path / "train.npz", images=images, labels=labels, dense=dense)
    out = tmp_path / "ofrecord"
    assert convert(tmp_path / "train.npz", "-o", out, "--part-num", 3, "--raw-bytes", "images") == 0
    text = capsys.readouterr().out
    assert "wrote 10 records" in text and "part-00000 .. part-00002" in text
    assert "images: uint8 (4, 5) -> bytes_list" in text and "dense: float64 (3,) -> double_list" in text
    assert sorted(os.listdir(out)) == ["part-00000", "part-00001", "part-00002"]
    batch = OFRecordSource(str(out), 3, part_name_suffix_length=5).next_records(10)
    order = [0, 3, 6, 9, 1, 4, 7, 2, 5, 8]  # round-robin over 3 parts, read part by part
    np.testing.assert_array_equal(decoders.decode_raw(batch, "images", (4, 5), np.uint8), images[order])
    np.testing.assert_array_equal(decoders.decode_raw(batch, "labels", (), np.int32), labels[order])
    assert decoders.decode_raw(batch, "dense", (3,), np.float64).tobytes() == dense[order].tobytes()


def test_npy_files_and_seeded_shuffle(tmp_path):
    ids = np.arange(20, dtype=np.int64)
    np.save(tmp_path / "ids.npy", ids)
    np.save(tmp_path / "mask.npy", (ids[:, None] > np.arange(3)).astype(np.int8))
    runs = []
    for name, seed in [("a", 1), ("b", 1), ("c", 2)]:
        out = tmp_path / name
        assert (
            convert(tmp_path / "ids.npy", tmp_path / "mask.npy", "-o", out, "--shuffle", "--seed", seed) == 0
        )
        runs.append([parse_record(r) for r in all_records(out, 1)])
    order = [int(r["ids"][0]) for r in runs[0]]
    assert sorted(order) == list(range(20)) and order != list(range(20))
    assert order == [int(r["ids"][0]) for r in runs[1]]  # same seed, same order
    assert order != [int(r["ids"][0]) for r in runs[2]]
    for r in runs[0]:
        i = int(r["ids"][0])
        assert r["mask"].dtype == np.int32 and r["mask"].tolist() == (i > np.arange(3)).astype(int).tolist()
    np.testing.assert_array_equal(order, np.random.default_rng(1).permutation(20))


def test_image_folder(tmp_path, capsys):
    rng = np.random.default_rng(1)
    folder = tmp_path / "imgs"
    files = {}
    for cls, n in [("dog", 2), ("cat", 3)]:
        (folder / cls).mkdir(parents=True)
        for i in range(n):
            img = rng.integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
            path = folder / cls / f"{i}.png"
            cv2.imwrite(str(path), img)
            files[path.read_bytes()] = (cls, img)
    (folder / "cat" / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert convert(folder, "-o", out, "--part-num", 2) == 0
    text = capsys.readouterr().out
    assert "class/label 0: cat (3 images)" in text and "class/label 1: dog (2 images)" in text
    batch = all_records(out, 2)
    assert len(batch) == 5
    labels = decoders.decode_raw(batch, "class/label", (), np.int32)
    for enc, label, img in zip(
        decoders.decode_bytes(batch, "encoded"), labels, decoders.decode_image(batch, "encoded")
    ):
        cls, original = files[enc]  # the file's bytes, as they are
        assert label == ["cat", "dog"].index(cls)
        np.testing.assert_array_equal(img, original)


@pytest.mark.parametrize(
    "setup, extra, words",
    [
        (lambda d: np.savez(d / "x.npz", a=np.zeros(3), b=np.zeros(4)), [], "lengths must agree"),
        (lambda d: np.savez(d / "x.npz", a=np.zeros(3)), ["--raw-bytes", "z"], "no such feature"),
        (lambda d: np.savez(d / "x.npz", a=np.zeros(3)), ["--part-num", "0"], "--part-num must be >= 1"),
        (lambda d: np.savez(d / "x.npz", a=np.array(["s", "t"])), [], "str values|numeric array"),
        (lambda d: (d / "x.npz").write_bytes(b"garbage"), [], "not a readable numpy file"),
        (lambda d: None, [], "is not a file"),
    ],
)
def test_bad_inputs_fail_cleanly_and_write_nothing(tmp_path, capsys, setup, extra, words):
    setup(tmp_path)
    out = tmp_path / "out"
    assert convert(tmp_path / "x.npz", "-o", out, *extra) == 1
    text = capsys.readouterr().out
    assert text.startswith("error: ") and len(text.splitlines()) == 1
    assert any(w in text for w in words.split("|")), text
    assert not out.exists() or os.listdir(out) == []


def test_empty_image_folder_and_existing_output(tmp_path, capsys):
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    assert convert(tmp_path / "imgs", "-o", tmp_path / "out") == 1
    assert "no image files" in capsys.readouterr().out
    np.save(tmp_path / "v.npy", np.arange(3))
    assert convert(tmp_path / "v.npy", "-o", tmp_path / "out") == 0
    assert convert(tmp_path / "v.npy", "-o", tmp_path / "out") == 1
    assert "pass --overwrite" in capsys.readouterr().out
    assert convert(tmp_path / "v.npy", "-o", tmp_path / "out", "--overwrite") == 0


def test_data_without_a_subcommand_prints_usage(capsys):
    assert main(["data"]) == 2
    assert "jobflow data convert INPUT... -o OUTPUT" in capsys.readouterr().out
