// HttpChunkSink: a query's answer as the body of an HTTP/1.1 chunked response, framed here rather than by
// cpp-httplib so that each chunk leaves in one send with no copy beyond the one into its buffer, and so that
// the final chunk can carry a trailer (cpp-httplib 0.11 copies every chunk two to three times and cannot send
// trailers). The response must say `Transfer-Encoding: chunked` and be given to cpp-httplib as a content
// provider without length. Not thread-safe; one per response.
#ifndef REWIND_WEB_HTTP_CHUNK_SINK_H_
#define REWIND_WEB_HTTP_CHUNK_SINK_H_

#include <cstdint>
#include <functional>
#include <string>

#include "query/pcap_writer.h"

namespace rwd {

class HttpChunkSink : public ByteSink {
 public:
  // Sends bytes to the client; false when the client is gone (cpp-httplib's DataSink::write).
  using SendFn = std::function<bool(const char* data, size_t n)>;

  // chunk_bytes: payload bytes gathered before a chunk is sent.
  explicit HttpChunkSink(SendFn send, size_t chunk_bytes = 1024 * 1024);

  // Cancelled once the client is gone; every later call returns that status.
  Status Write(const void* data, size_t n) override;
  // Sends what is gathered as one chunk (nothing when empty).
  Status Flush() override;

  // Ends the body: flushes, then sends the zero-length last chunk followed by `trailer` (field lines, each
  // ending in CRLF; may be empty) and the blank line. Without this call the body never ends well-formed,
  // which is how a client that reads no trailers learns that an answer was cut short.
  Status Finish(const std::string& trailer);

  // Payload bytes sent so far, framing excluded.
  uint64_t written() const { return written_; }

 private:
  // Width of the chunk-size field at the front of buf_: fixed, so the payload is gathered in place.
  static constexpr size_t kSizeField = 8 + 2;

  SendFn send_;
  size_t chunk_bytes_;
  uint64_t written_ = 0;
  std::string buf_;  // kSizeField bytes of room, then the payload
  Status error_;
};

}  // namespace rwd

#endif  // REWIND_WEB_HTTP_CHUNK_SINK_H_
