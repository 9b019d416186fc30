// Link-type numbering. Stored blocks and output files carry LINKTYPE_* values (the pcap file format's);
// libpcap's API (pcap_datalink, pcap_open_dead) speaks DLT_* values, which differ for a few types on Linux.
// Pure functions; thread-safe.
#ifndef REWIND_INDEX_LINK_TYPE_H_
#define REWIND_INDEX_LINK_TYPE_H_

#include <cstdint>

namespace rwd {

uint32_t DltToLinktype(int dlt);
int LinktypeToDlt(uint32_t linktype);

}  // namespace rwd

#endif  // REWIND_INDEX_LINK_TYPE_H_
