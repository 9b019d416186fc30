// libFuzzer target: an index table (a LevelDB table written by IndexBuilder) from any bytes, opened and read
// as a query reads it: summary, block directory, every posting key, and a lookup of each. Damage must come
// back as a Status (LevelDB's block checksums are verified), never a crash. The input is handed over as a memfd.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "index/index_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fd = memfd_create("rewind-fuzz", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  auto r = rwd::IndexReader::Open("/proc/self/fd/" + std::to_string(fd));
  if (r.ok()) {
    std::vector<std::string> keys;
    (void)(*r)->ForEachPostingKey([&](std::string_view k) {
      if (keys.size() < 64) keys.emplace_back(k);
    });
    for (const std::string& k : keys) {
      std::vector<uint32_t> positions;
      (void)(*r)->LookupRange(k, k, &positions);
      (void)(*r)->EstimateBytes(k, k);
    }
  }
  close(fd);
  return 0;
}
