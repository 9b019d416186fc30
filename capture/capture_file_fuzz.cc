// libFuzzer target: the capture-file readers rewind implements itself, on any bytes: PcapngReader (pcapng whose
// interfaces differ, which libpcap refuses), StenographerReader (stenotype's packet files) and PcapFileReader
// (classic pcap, which import reads itself). The first byte picks the reader. Each reads a path, so the input
// is handed over as a memfd. Damage must come back as a Status with every packet before it delivered; nothing
// may read past what was read (ASan).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "capture/pcap_file_reader.h"
#include "capture/pcapng_reader.h"
#include "capture/stenographer_reader.h"

namespace {

void Touch(const uint8_t* p, uint32_t n) {
  if (n == 0) return;
  volatile uint8_t sink = p[0] ^ p[n - 1];
  (void)sink;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  int fd = memfd_create("rewind-fuzz", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t done = 0;
  while (done < size - 1) {
    ssize_t n = write(fd, data + 1 + done, size - 1 - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (data[0] % 3 == 2) {
    auto r = rwd::PcapFileReader::Open(path);
    if (r.ok() && *r) {
      rwd::PcapFileReader::Record rec;
      for (int i = 0; i < 100000 && (*r)->Next(&rec); ++i) Touch(rec.data, rec.caplen);
      (void)(*r)->status();
    }
  } else if (data[0] % 3 == 0) {
    auto r = rwd::PcapngReader::Open(path);
    if (r.ok()) {
      rwd::PcapngReader::Packet p;
      for (int i = 0; i < 100000 && (*r)->Next(&p); ++i) Touch(p.data, p.caplen);
      (void)(*r)->status();
    }
  } else {
    auto r = rwd::StenographerReader::Open(path);
    if (r.ok()) {
      rwd::PacketView p;
      for (int i = 0; i < 100000 && (*r)->Next(&p); ++i) Touch(p.data, p.caplen);
      (void)(*r)->status();
    }
  }
  close(fd);
  return 0;
}
