// Reference numbers for jobflow/_src/data/cpp_random.py (tests/test_ofrecord_source.py):
// what OneFlow's RandomShuffleDataset draws (oneflow/user/data/random_shuffle_dataset.h).
//   g++ -O2 -std=c++17 tests/goldens/cpp_random.cpp -o /tmp/cpp_random && /tmp/cpp_random
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

int main() {
  for (int64_t seed : {0LL, 1LL, 42LL, 524287LL, -1LL, 4294967297LL}) {
    std::seed_seq gen_seq({seed});
    std::vector<uint32_t> words(4);
    gen_seq.generate(words.begin(), words.end());
    std::printf("seed_seq %lld: %u %u %u %u\n", (long long)seed, words[0], words[1], words[2], words[3]);
    std::seed_seq seq({seed});
    std::default_random_engine engine(seq);
    std::printf("engine %lld:", (long long)seed);
    for (int n : {1, 2, 3, 7, 1024, 1000003, 2147483645}) {
      std::uniform_int_distribution<> dis(0, n - 1);
      std::printf(" %d", dis(engine));
    }
    std::printf(" state %lu\n", (unsigned long)engine());
  }
  std::seed_seq big({7LL});
  std::vector<uint32_t> words(10);
  big.generate(words.begin(), words.end());
  std::printf("seed_seq10 7:");
  for (auto w : words) std::printf(" %u", w);
  std::printf("\n");
}
