// rewind_index_bench: the indexing thread's work per packet, away from capture — reads the raw blocks of a
// packet file into memory once, then feeds them to IndexBuilder::AddBlock ROUNDS times, each round into a
// fresh builder (as a capture does for every new file), and prints nanoseconds per packet and the heap the
// last builder holds (IndexBuilder::memory()).
//
//   rewind_index_bench PACKET_FILE [ROUNDS (3)]
//
// PACKET_FILE: a raw (uncompressed) packet file of a store, e.g. STORE/PKT0/<name> after `rewind import`.
// Build: cmake --build build --target rewind_index_bench
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "index/block_format.h"
#include "index/index_builder.h"

namespace rwd {
namespace {

int Run(const char* path, int rounds) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::perror(path);
    return 1;
  }
  std::vector<std::unique_ptr<uint8_t[]>> blocks;
  while (true) {
    std::unique_ptr<uint8_t[]> block(new uint8_t[kBlockSize]);
    ssize_t n = pread(fd, block.get(), kBlockSize, static_cast<off_t>(blocks.size()) * kBlockSize);
    if (n != static_cast<ssize_t>(kBlockSize)) break;
    BlockReader reader;
    if (!reader.Open(block.get(), kBlockSize).ok() || reader.num_packets() == 0) break;  // preallocated end
    blocks.push_back(std::move(block));
  }
  close(fd);
  if (blocks.empty()) {
    std::fprintf(stderr, "%s: no raw blocks (a compressed store is not supported)\n", path);
    return 1;
  }
  uint64_t packets = 0;
  size_t memory = 0;
  auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    IndexBuilder builder;
    for (uint32_t b = 0; b < blocks.size(); ++b) {
      Status s = builder.AddBlock(b, uint64_t{b} * kBlockSize, kBlockSize, blocks[b].get(), 0);
      if (!s.ok()) {
        std::fprintf(stderr, "block %u: %s\n", b, s.ToString().c_str());
        return 1;
      }
    }
    packets += builder.summary().packets;
    memory = builder.memory();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%zu blocks, %llu packets in %d rounds: %.1f ns per packet, index memory %.1f MB\n", blocks.size(),
              static_cast<unsigned long long>(packets), rounds, seconds * 1e9 / static_cast<double>(packets),
              static_cast<double>(memory) / 1e6);
  return 0;
}

}  // namespace
}  // namespace rwd

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: rewind_index_bench PACKET_FILE [ROUNDS]\n");
    return 2;
  }
  int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  return rwd::Run(argv[1], rounds < 1 ? 1 : rounds);
}
