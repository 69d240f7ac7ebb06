"""The C++ random numbers OneFlow's record shuffle draws, reproduced exactly.

OneFlow's ``RandomShuffleDataset`` seeds ``std::default_random_engine`` (libstdc++'s
``minstd_rand0``: ``x = 16807 x mod (2^31 - 1)``) through ``std::seed_seq({seed})`` and
draws each swap position with ``std::uniform_int_distribution<int>(0, n - 1)``. All three
are fixed by the C++ standard or (for the distribution with a generator whose range is
not a power of two) by libstdc++'s one algorithm, so the same seed gives the same record
order here as in OneFlow. The whole state is one integer (:attr:`MinstdRand0.x`).
``tests/goldens/cpp_random.cpp`` prints the reference numbers the tests compare with.
"""

from __future__ import annotations

__all__ = ["seed_seq_generate", "MinstdRand0"]

_MASK32 = 0xFFFFFFFF


def _t(x: int) -> int:
    return x ^ (x >> 27)


def seed_seq_generate(seeds: list[int], n: int) -> list[int]:
    """``std::seed_seq(seeds).generate(out, out + n)`` (each seed taken modulo 2^32)."""
    v = [s & _MASK32 for s in seeds]
    out = [0x8B8B8B8B] * n
    s = len(v)
    t = 11 if n >= 623 else 7 if n >= 68 else 5 if n >= 39 else 3 if n >= 7 else (n - 1) // 2
    p = (n - t) // 2
    q = p + t
    m = max(s + 1, n)
    for k in range(m):
        r1 = (1664525 * _t(out[k % n] ^ out[(k + p) % n] ^ out[(k - 1) % n])) & _MASK32
        if k == 0:
            r2 = r1 + s
        elif k <= s:
            r2 = r1 + k % n + v[k - 1]
        else:
            r2 = r1 + k % n
        r2 &= _MASK32
        out[(k + p) % n] = (out[(k + p) % n] + r1) & _MASK32
        out[(k + q) % n] = (out[(k + q) % n] + r2) & _MASK32
        out[k % n] = r2
    for k in range(m, m + n):
        r3 = (1566083941 * _t((out[k % n] + out[(k + p) % n] + out[(k - 1) % n]) & _MASK32)) & _MASK32
        r4 = (r3 - k % n) & _MASK32
        out[(k + p) % n] ^= r3
        out[(k + q) % n] ^= r4
        out[k % n] = r4
    return out


class MinstdRand0:
    """libstdc++'s ``std::default_random_engine`` (``minstd_rand0``)."""

    A = 16807
    M = 2147483647

    def __init__(self, x: int) -> None:
        if not 1 <= x < self.M:
            raise ValueError(f"a minstd_rand0 state is in [1, {self.M - 1}]; got {x}")
        self.x = x

    @classmethod
    def from_seed_seq(cls, seed: int) -> MinstdRand0:
        """``std::default_random_engine(std::seed_seq({seed}))``: ``linear_congruential_engine::
        seed(Sseq&)`` generates 4 words and keeps the last modulo ``M`` (0 becomes 1)."""
        x = seed_seq_generate([seed], 4)[3] % cls.M
        return cls(x or 1)

    def __call__(self) -> int:
        self.x = (self.A * self.x) % self.M
        return self.x

    def uniform_int(self, low: int, high: int) -> int:
        """``std::uniform_int_distribution<int>(low, high)(engine)`` as libstdc++ draws it
        from this engine (range ``M - 2`` is not a power of two minus one: the downscaling
        loop, the same in every libstdc++ version)."""
        urange = high - low
        urngrange = self.M - 2  # max() - min() = (M - 1) - 1
        if urange < 0 or urange >= urngrange:
            raise ValueError(f"uniform_int({low}, {high}): the range must be non-empty and below {urngrange}")
        uerange = urange + 1
        scaling = urngrange // uerange
        past = uerange * scaling
        while True:
            ret = self() - 1
            if ret < past:
                return ret // scaling + low
