#include "index/link_type.h"

namespace rwd {
namespace {

// (DLT on Linux, LINKTYPE) pairs that differ; every other value is the same in both numberings.
constexpr struct {
  int dlt;
  uint32_t linktype;
} kDiffering[] = {
    {12, 101},   // raw IP
    {11, 100},   // ATM RFC 1483
    {19, 106},   // Linux ATM classical IP
    {15, 102},   // BSD/OS SLIP
    {16, 103},   // BSD/OS PPP
};

}  // namespace

uint32_t DltToLinktype(int dlt) {
  for (const auto& d : kDiffering) {
    if (d.dlt == dlt) return d.linktype;
  }
  return static_cast<uint32_t>(dlt);
}

int LinktypeToDlt(uint32_t linktype) {
  for (const auto& d : kDiffering) {
    if (d.linktype == linktype) return d.dlt;
  }
  return static_cast<int>(linktype);
}

}  // namespace rwd
