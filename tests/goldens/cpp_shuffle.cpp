// OneFlow's RandomShuffleDataset (oneflow/user/data/random_shuffle_dataset.h, v0.4.0) over an
// endless stream of record ids 0, 1, ..., N-1, 0, 1, ... (OFRecordDataset of one part with
// N records and shuffle_after_epoch=false). Prints the first 40 ids it outputs for each
// (seed, N, buffer size); tests/test_ofrecord_source.py compares OFRecordSource with them.
//   g++ -O2 -std=c++17 tests/goldens/cpp_shuffle.cpp -o /tmp/cpp_shuffle && /tmp/cpp_shuffle
#include <cstdint>
#include <cstdio>
#include <random>
#include <utility>
#include <vector>

int main() {
  const int64_t seeds[] = {0, 7, 123456789};
  const int sizes[][2] = {{10, 4}, {5, 8}, {23, 1}, {23, 16}};
  for (int64_t seed : seeds) {
    for (auto& nb : sizes) {
      int n = nb[0], buffer_size = nb[1], next = 0;
      std::seed_seq seq({seed});
      std::default_random_engine rand_engine(seq);
      std::vector<int> buffer;
      for (int i = 0; i < buffer_size; ++i) { buffer.push_back(next); next = (next + 1) % n; }
      std::printf("seed=%lld n=%d buffer=%d:", (long long)seed, n, buffer_size);
      for (int k = 0; k < 40; ++k) {
        int sample = next;
        next = (next + 1) % n;
        std::uniform_int_distribution<> dis(0, buffer.size() - 1);
        int offset = dis(rand_engine);
        std::swap(buffer[offset], sample);
        std::printf(" %d", sample);
      }
      std::printf("\n");
    }
  }
}
