#include "capture/packet_ring.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <net/if_arp.h>
#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "index/block_format.h"
#include "index/link_type.h"

namespace rwd {
namespace {

// Stenographer's --filter format: hex numbers, four per instruction (code jt jf k).
bool ParseHexFilter(const std::string& text, std::vector<uint64_t>* code) {
  std::istringstream in(text);
  std::string tok;
  std::vector<uint64_t> v;
  while (in >> tok) {
    if (tok.size() > 8) return false;
    for (char c : tok) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    }
    v.push_back(std::stoull(tok, nullptr, 16));
  }
  if (v.empty() || v.size() % 4 != 0) return false;
  *code = std::move(v);
  return true;
}

uint32_t LinktypeForArphrd(int arphrd) {
  switch (arphrd) {
    case ARPHRD_ETHER:
    case ARPHRD_LOOPBACK:
      return 1;    // Ethernet framing
    case ARPHRD_NONE:
    case ARPHRD_IPGRE:
    case ARPHRD_TUNNEL:
    case ARPHRD_TUNNEL6:
      return 101;  // raw IP
    default:
      return 0xffffffff;
  }
}

}  // namespace

Status CompileSocketFilter(const std::string& filter, uint32_t linktype, uint32_t snaplen,
                           std::vector<uint64_t>* code) {
  code->clear();
  if (ParseHexFilter(filter, code)) return Status::OK();
  pcap_t* p = pcap_open_dead(LinktypeToDlt(linktype), static_cast<int>(snaplen));
  if (p == nullptr) return Status::InvalidArgument("libpcap cannot compile for link type " + std::to_string(linktype));
  bpf_program prog;
  if (pcap_compile(p, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    std::string err = pcap_geterr(p);
    pcap_close(p);
    return Status::InvalidArgument("bad --filter '" + filter + "': " + err);
  }
  for (u_int i = 0; i < prog.bf_len; ++i) {
    code->push_back(prog.bf_insns[i].code);
    code->push_back(prog.bf_insns[i].jt);
    code->push_back(prog.bf_insns[i].jf);
    code->push_back(prog.bf_insns[i].k);
  }
  pcap_freecode(&prog);
  pcap_close(p);
  return Status::OK();
}

PacketRing::~PacketRing() {
  if (map_ != nullptr) munmap(map_, map_size_);
  if (fd_ >= 0) close(fd_);
}

Result<std::unique_ptr<PacketRing>> PacketRing::Open(const PacketRingOptions& options) {
  std::unique_ptr<PacketRing> r(new PacketRing());
  r->options_ = options;
  if (options.blocks < 2) return Status::InvalidArgument("--blocks must be at least 2");
  if (options.snaplen == 0 || options.snaplen > kMaxSnapLen) {
    return Status::InvalidArgument("--snaplen must be 1.." + std::to_string(kMaxSnapLen));
  }
  unsigned ifindex = if_nametoindex(options.iface.c_str());
  if (ifindex == 0) return Status::InvalidArgument("no interface '" + options.iface + "'");
  // Protocol 0 until bound: nothing is queued from other interfaces before the ring and filter exist.
  r->fd_ = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (r->fd_ < 0) {
    int err = errno;
    if (err == EPERM || err == EACCES) {
      return Status::IOError("opening a packet socket needs root or CAP_NET_RAW: " + std::string(strerror(err)));
    }
    return Status::FromErrno("socket(AF_PACKET)", err);
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, options.iface.c_str(), IFNAMSIZ - 1);
  if (ioctl(r->fd_, SIOCGIFHWADDR, &ifr) != 0) return Status::FromErrno("SIOCGIFHWADDR " + options.iface, errno);
  r->linktype_ = LinktypeForArphrd(ifr.ifr_hwaddr.sa_family);
  if (r->linktype_ == 0xffffffff) {
    return Status::InvalidArgument("interface " + options.iface + " has an unsupported hardware type " +
                                   std::to_string(ifr.ifr_hwaddr.sa_family));
  }
  int version = TPACKET_V3;
  if (setsockopt(r->fd_, SOL_PACKET, PACKET_VERSION, &version, sizeof(version)) != 0) {
    return Status::FromErrno("PACKET_VERSION TPACKET_V3", errno);
  }
  // Filter (also applies the snap length: the kernel truncates to the program's return value).
  std::vector<uint64_t> code;
  Status s = CompileSocketFilter(options.filter.empty() ? "" : options.filter, r->linktype_, options.snaplen, &code);
  if (!s.ok()) return s;
  std::vector<sock_filter> insns;
  for (size_t i = 0; i + 3 < code.size(); i += 4) {
    insns.push_back({static_cast<uint16_t>(code[i]), static_cast<uint8_t>(code[i + 1]),
                     static_cast<uint8_t>(code[i + 2]), static_cast<uint32_t>(code[i + 3])});
  }
  sock_fprog fprog{static_cast<unsigned short>(insns.size()), insns.data()};
  if (!insns.empty() && setsockopt(r->fd_, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof(fprog)) != 0) {
    return Status::FromErrno("attaching the socket filter", errno);
  }
  tpacket_req3 req{};
  req.tp_block_size = kBlockSize;
  req.tp_block_nr = options.blocks;
  req.tp_frame_size = 2048;
  req.tp_frame_nr = (kBlockSize / req.tp_frame_size) * options.blocks;
  req.tp_retire_blk_tov = options.block_timeout_ms;
  req.tp_sizeof_priv = kBlockPrivSize;
  req.tp_feature_req_word = 0;
  if (setsockopt(r->fd_, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) != 0) {
    return Status::FromErrno("PACKET_RX_RING (" + std::to_string(options.blocks) + " blocks)", errno);
  }
  r->map_size_ = size_t{kBlockSize} * options.blocks;
  void* m = mmap(nullptr, r->map_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd_, 0);
  if (m == MAP_FAILED) return Status::FromErrno("mapping the packet ring", errno);
  r->map_ = static_cast<uint8_t*>(m);
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(ifindex);
  if (bind(r->fd_, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) {
    return Status::FromErrno("binding to " + options.iface, errno);
  }
  if (options.promiscuous) {
    packet_mreq mr{};
    mr.mr_ifindex = static_cast<int>(ifindex);
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(r->fd_, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) != 0) {
      return Status::FromErrno("promiscuous mode on " + options.iface, errno);
    }
  }
  if (options.fanout_id >= 0) {
    int arg = (options.fanout_id & 0xffff) | (options.fanout_type << 16);
    if (setsockopt(r->fd_, SOL_PACKET, PACKET_FANOUT, &arg, sizeof(arg)) != 0) {
      return Status::FromErrno("joining fanout group " + std::to_string(options.fanout_id), errno);
    }
  }
  RingStats ignored;
  r->ReadStats(&ignored);  // start counting from here
  return r;
}

bool PacketRing::NextBlockReady() const {
  auto* desc = reinterpret_cast<const tpacket_block_desc*>(map_ + size_t{next_} * kBlockSize);
  return __atomic_load_n(&desc->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER;
}

Result<uint8_t*> PacketRing::NextBlock(int timeout_ms) {
  uint8_t* block = map_ + size_t{next_} * kBlockSize;
  if (!NextBlockReady()) {
    pollfd pfd{fd_, POLLIN | POLLERR, 0};
    int rc = poll(&pfd, 1, timeout_ms);
    if (rc < 0 && errno != EINTR) return Status::FromErrno("poll on packet socket", errno);
    if (rc > 0 && (pfd.revents & POLLERR)) {
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return Status::FromErrno("capture on " + options_.iface, err);  // e.g. the interface went away
    }
    if (!NextBlockReady()) {
      // The socket reports readable while user space still holds earlier blocks (written or indexed in
      // the background), although the next one is not ready: pause briefly instead of spinning on poll.
      if (rc > 0) {
        timespec ts{0, 200 * 1000};
        nanosleep(&ts, nullptr);
      }
      return static_cast<uint8_t*>(nullptr);
    }
  }
  next_ = (next_ + 1) % options_.blocks;
  return block;
}

void PacketRing::ReleaseBlock(uint8_t* block) {
  auto* desc = reinterpret_cast<tpacket_block_desc*>(block);
  __atomic_store_n(&desc->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}

Status PacketRing::ReadStats(RingStats* delta) {
  tpacket_stats_v3 st{};
  socklen_t len = sizeof(st);
  if (getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) {
    return Status::FromErrno("PACKET_STATISTICS", errno);
  }
  // tp_packets counts every packet the ring saw, dropped ones included.
  delta->packets = st.tp_packets;
  delta->drops = st.tp_drops;
  return Status::OK();
}

}  // namespace rwd
