"""OFRecordSource: OneFlow's reading order, its exact record shuffle (against numbers
printed by the C++ standard library, tests/goldens/cpp_*.cpp), epochs, the split of parts
over ranks, and state/restore giving bitwise the records an uninterrupted reader gives."""

import json
import pathlib
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jobflow as flow
from jobflow._src.data.cpp_random import MinstdRand0, seed_seq_generate
from jobflow._src.data.ofrecord import OFRecordWriter, parse_record, write_records
from jobflow._src.data.source import OFRecordSource, balanced_range

GOLDENS = pathlib.Path(__file__).parent / "goldens"


def make_dataset(path, sizes, suffix_length=-1):
    """Parts ``part-<p>`` holding ``sizes[p]`` records; record ``i`` of part ``p`` has
    ``id = 1000 p + i`` and a variable-length payload (offsets differ from record to record)."""
    for p, n in enumerate(sizes):
        name = "part-" + str(p).zfill(max(suffix_length, 0))
        write_records(
            str(path / name), [{"id": np.int64(1000 * p + i), "pad": b"x" * (i % 7 + 1)} for i in range(n)]
        )
    return str(path)


def ids(records):
    return [int(parse_record(r)["id"][0]) for r in records]


# -- the C++ random numbers ---------------------------------------------------------------


def test_cpp_random_equals_libstdcxx():
    lines = (GOLDENS / "cpp_random.txt").read_text().splitlines()
    for seed in (0, 1, 42, 524287, -1, 4294967297):
        words = [
            int(w) for w in re.search(rf"^seed_seq {seed}: (.*)$", "\n".join(lines), re.M).group(1).split()
        ]
        assert seed_seq_generate([seed], 4) == words
        draws = re.search(rf"^engine {seed}: (.*) state (\d+)$", "\n".join(lines), re.M)
        engine = MinstdRand0.from_seed_seq(seed)
        got = [engine.uniform_int(0, n - 1) for n in (1, 2, 3, 7, 1024, 1000003, 2147483645)]
        assert got == [int(w) for w in draws.group(1).split()]
        assert engine() == int(draws.group(2))
    ten = [int(w) for w in lines[-1].split(":")[1].split()]
    assert seed_seq_generate([7], 10) == ten


@pytest.mark.parametrize("line", (GOLDENS / "cpp_shuffle.txt").read_text().splitlines())
def test_record_shuffle_equals_oneflows(tmp_path, line):
    seed, n, buffer = (int(v) for v in re.match(r"seed=(-?\d+) n=(\d+) buffer=(\d+):", line).groups())
    expected = [int(v) for v in line.split(":")[1].split()]
    make_dataset(tmp_path, [n])
    source = OFRecordSource(str(tmp_path), random_shuffle=True, shuffle_buffer_size=buffer, seed=seed)
    assert ids(source.next_records(len(expected))) == expected


# -- order, epochs, ranks ------------------------------------------------------------------


def test_reads_parts_in_order_and_cycles(tmp_path):
    make_dataset(tmp_path, [3, 0, 2], suffix_length=5)  # an empty part is skipped
    source = OFRecordSource(str(tmp_path), data_part_num=3, part_name_suffix_length=5)
    assert ids(source.next_records(4)) == [0, 1, 2, 2000]
    assert source.epoch == 0
    assert ids(source.next_records(6)) == [2001, 0, 1, 2, 2000, 2001]
    assert source.epoch == 1
    assert source.next_records(0) == []


def test_balanced_range_is_oneflows_splitter():
    assert [balanced_range(5, 2, r) for r in range(2)] == [(0, 3), (3, 5)]
    assert [balanced_range(7, 3, r) for r in range(3)] == [(0, 3), (3, 5), (5, 7)]
    assert [balanced_range(4, 4, r) for r in range(4)] == [(0, 1), (1, 2), (2, 3), (3, 4)]


@pytest.mark.parametrize("shuffle_after_epoch", [False, True])
def test_ranks_read_disjoint_shares_covering_all_parts(tmp_path, shuffle_after_epoch):
    sizes = [2, 3, 1, 2, 4]
    make_dataset(tmp_path, sizes)
    world = 2
    sources = [
        OFRecordSource(str(tmp_path), 5, shuffle_after_epoch=shuffle_after_epoch, seed=3, rank=r, world=world)
        for r in range(world)
    ]
    for epoch in range(4):
        shares = [s.parts_of_epoch(epoch) for s in sources]
        assert sorted(shares[0] + shares[1]) == [0, 1, 2, 3, 4]
        assert [len(s) for s in shares] == [3, 2]
        if epoch == 0 or not shuffle_after_epoch:
            assert shares == [[0, 1, 2], [3, 4]]
    # epoch 0 of rank 1: parts 3 and 4, whole, in order
    assert ids(sources[1].next_records(6)) == [3000, 3001, 4000, 4001, 4002, 4003]


def test_shuffle_after_epoch_permutes_parts_per_epoch(tmp_path):
    make_dataset(tmp_path, [1] * 8)
    source = OFRecordSource(str(tmp_path), 8, shuffle_after_epoch=True, seed=5)
    epochs = [ids(source.next_records(8)) for _ in range(4)]
    assert epochs[0] == [1000 * p for p in range(8)]
    for e in epochs[1:]:
        assert sorted(e) == epochs[0]
    assert len({tuple(e) for e in epochs}) == 4  # 8! orders: four equal ones would be a bug
    again = OFRecordSource(str(tmp_path), 8, shuffle_after_epoch=True, seed=5)
    assert [ids(again.next_records(8)) for _ in range(4)] == epochs
    other = OFRecordSource(str(tmp_path), 8, shuffle_after_epoch=True, seed=6)
    assert [ids(other.next_records(8)) for _ in range(4)] != epochs


def test_shuffle_is_a_bounded_buffer_permutation(tmp_path):
    make_dataset(tmp_path, [50, 50])
    source = OFRecordSource(str(tmp_path), 2, random_shuffle=True, shuffle_buffer_size=16, seed=1)
    out = ids(source.next_records(400))
    stream = [1000 * p + i for p in range(2) for i in range(50)] * 5
    assert len(source.state()["buffer"]) == 16
    # the k-th output was read at most 16 records after it: position in the stream <= k + 16
    for k, v in enumerate(out[:100]):
        assert stream.index(v) <= k + 16
    assert out[:100] != stream[:100]
    assert out != ids(
        OFRecordSource(str(tmp_path), 2, random_shuffle=True, shuffle_buffer_size=16, seed=2).next_records(
            400
        )
    )


# -- state and restore ---------------------------------------------------------------------

CONFIGS = [
    dict(),
    dict(random_shuffle=True, shuffle_buffer_size=7, seed=11),
    dict(random_shuffle=True, shuffle_buffer_size=3, shuffle_after_epoch=True, seed=2),
    dict(random_shuffle=True, shuffle_buffer_size=5, shuffle_after_epoch=True, seed=9, rank=1, world=2),
]


@pytest.mark.parametrize("config", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_restored_source_continues_bitwise(tmp_path, config):
    make_dataset(tmp_path, [5, 1, 4, 3])
    make = lambda: OFRecordSource(str(tmp_path), 4, **config)
    reference = make().next_records(90)
    rng = np.random.default_rng(0)
    for cut in [0, 1, 2, 5, 13, 37, 64]:
        first = make()
        head = first.next_records(cut)
        state = json.loads(json.dumps(first.state()))  # what a checkpoint stores
        first.next_records(int(rng.integers(1, 20)))  # the original goes on; the state is a copy
        resumed = make()
        resumed.restore(state)
        tail = [r for n in (3, 17, 90 - cut - 20) for r in resumed.next_records(n)]
        assert head + tail == reference, f"cut at {cut}"


def test_state_is_small_json_with_offsets_not_bytes(tmp_path):
    make_dataset(tmp_path, [30])
    source = OFRecordSource(str(tmp_path), random_shuffle=True, shuffle_buffer_size=8)
    assert source.state()["buffer"] is None
    source.next_records(3)
    state = source.state()
    assert json.loads(json.dumps(state)) == state
    assert len(state["buffer"]) == 8 and all(len(e) == 2 for e in state["buffer"])
    assert len(json.dumps(state)) < 600


def test_restore_rejects_other_settings_and_keeps_position(tmp_path):
    make_dataset(tmp_path, [6])
    source = OFRecordSource(str(tmp_path), random_shuffle=True, shuffle_buffer_size=2, seed=1)
    source.next_records(2)
    before = source.state()
    other = OFRecordSource(str(tmp_path), random_shuffle=True, shuffle_buffer_size=2, seed=2)
    with pytest.raises(flow.errors.ArgumentError, match=r"other settings: seed=2 \(this source: 1\)"):
        source.restore(other.state())
    for bad in [
        dict(before, buffer=[[0, 5]]),  # two records buffered
        dict(before, parts=[0, 0]),  # not the part order of its epoch
        dict(before, offset=10**9),  # past the end of its file
        dict(before, rng=None),
    ]:
        with pytest.raises(flow.errors.ArgumentError, match="inconsistent"):
            source.restore(bad)
    with pytest.raises(flow.errors.ArgumentError, match="malformed"):
        source.restore({k: v for k, v in before.items() if k != "offset"})
    with pytest.raises(flow.errors.DataError, match="byte offset 1"):  # not a record boundary
        source.restore(dict(before, buffer=[[0, 1], [0, 0]]))
    assert source.state() == before


def test_bad_arguments(tmp_path):
    make_dataset(tmp_path, [1, 1])
    for kwargs, words in [
        (dict(data_part_num=0), "data_part_num"),
        (dict(data_part_num=2, world=3), r"data_part_num\) must be >= world=3"),
        (dict(data_part_num=2, rank=2, world=2), "rank"),
        (dict(shuffle_buffer_size=0), "shuffle_buffer_size"),
        (dict(random_shuffle=1), "random_shuffle"),
        (dict(part_name_suffix_length=-2), "part_name_suffix_length"),
    ]:
        with pytest.raises(flow.errors.ArgumentError, match=words):
            OFRecordSource(str(tmp_path), **kwargs)


def test_writer_then_source_reads_oneflow_padded_names(tmp_path):
    with OFRecordWriter(str(tmp_path), part_num=2, part_name_prefix="train-", part_name_suffix_length=3) as w:
        for i in range(4):
            w.write({"id": np.int64(i)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-000", "train-001"]
    source = OFRecordSource(str(tmp_path), 2, part_name_prefix="train-", part_name_suffix_length=3)
    assert ids(source.next_records(4)) == [0, 2, 1, 3]


def test_empty_parts_with_shuffle_after_epoch(tmp_path):
    # one record in eight parts: after each epoch the part holding it moves in the order,
    # so the reader may pass up to 2 * 8 - 1 empty parts between two records
    make_dataset(tmp_path, [1] + [0] * 7)
    source = OFRecordSource(str(tmp_path), 8, shuffle_after_epoch=True, seed=0)
    assert ids(source.next_records(20)) == [0] * 20
    assert source.epoch == 19
    state = source.state()
    assert ids(source.next_records(3)) == [0] * 3
    source.restore(state)
    assert source.epoch == 19


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    world=st.integers(1, 3),
    random_shuffle=st.booleans(),
    shuffle_after_epoch=st.booleans(),
    buffer=st.integers(1, 10),
    seed=st.integers(-(2**40), 2**40),
    cut=st.integers(0, 60),
)
def test_restore_property(
    tmp_path_factory, sizes, world, random_shuffle, shuffle_after_epoch, buffer, seed, cut
):
    world = min(world, len(sizes))
    path = tmp_path_factory.mktemp("ds")
    make_dataset(path, sizes)
    for rank in range(world):
        kwargs = dict(
            random_shuffle=random_shuffle,
            shuffle_buffer_size=buffer,
            shuffle_after_epoch=shuffle_after_epoch,
            seed=seed,
            rank=rank,
            world=world,
        )
        reference = OFRecordSource(str(path), len(sizes), **kwargs).next_records(cut + 25)
        first = OFRecordSource(str(path), len(sizes), **kwargs)
        first.next_records(cut)
        resumed = OFRecordSource(str(path), len(sizes), **kwargs)
        resumed.restore(json.loads(json.dumps(first.state())))
        assert reference[cut:] == resumed.next_records(25)
