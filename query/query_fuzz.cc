// libFuzzer target: a query's text through the parser, the planner and libpcap's compiler, as a request's
// body goes (query text is what an HTTP client controls most directly). Errors must come back as a syntax
// error or a Status, never a crash. Long inputs are skipped: libpcap's optimizer time grows steeply with
// the number of terms, which the server bounds separately (PacketFilter::kMaxPrimitivesPerProgram).
#include <cstddef>
#include <cstdint>
#include <string>

#include "query/packet_filter.h"
#include "query/query_parser.h"
#include "query/query_plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 512) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  rwd::ParsedQuery parsed;
  rwd::QuerySyntaxError error;
  if (!rwd::ParseQuery(text, 1764000000LL * 1000000000LL, &parsed, &error)) {
    (void)error.ToString();
    return 0;
  }
  rwd::QueryPlan plan = rwd::QueryPlan::Build(parsed.root.get());
  (void)plan.uses_index();
  rwd::PacketFilter filter(parsed.root.get(), true);
  (void)filter.Validate({1, 0, 101, 113});
  return 0;
}
