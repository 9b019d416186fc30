#include "web/http_chunk_sink.h"

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rwd {
namespace {

// Decodes a chunked body as RFC 9112 section 7.1 reads it: the payload, and the trailer section after the last
// chunk. Fails the test on any framing error; `complete` says whether the last chunk and final CRLF came.
struct Decoded {
  std::string payload;
  std::string trailer;
  bool complete = false;
  std::vector<size_t> chunks;  // payload bytes of each chunk before the last
};

Decoded Decode(const std::string& wire) {
  Decoded d;
  size_t at = 0;
  while (at < wire.size()) {
    size_t eol = wire.find("\r\n", at);
    EXPECT_NE(eol, std::string::npos) << "chunk-size line without CRLF at " << at;
    if (eol == std::string::npos) return d;
    std::string size_text = wire.substr(at, eol - at);
    EXPECT_FALSE(size_text.empty());
    EXPECT_EQ(size_text.find_first_not_of("0123456789abcdefABCDEF"), std::string::npos) << size_text;
    size_t n = std::strtoul(size_text.c_str(), nullptr, 16);
    at = eol + 2;
    if (n == 0) {
      size_t end = wire.find("\r\n\r\n", at - 2);
      EXPECT_NE(end, std::string::npos) << "no blank line after the last chunk";
      if (end == std::string::npos) return d;
      d.trailer = wire.substr(at, end + 2 - at);
      EXPECT_EQ(end + 4, wire.size()) << "bytes after the chunked body";
      d.complete = true;
      return d;
    }
    EXPECT_LE(at + n + 2, wire.size());
    d.payload += wire.substr(at, n);
    EXPECT_EQ(wire.substr(at + n, 2), "\r\n");
    at += n + 2;
    d.chunks.push_back(n);
  }
  return d;
}

TEST(HttpChunkSink, WritesOfAnySizeArriveInOrderInChunksOfTheGivenSize) {
  std::string wire;
  std::vector<size_t> sends;
  HttpChunkSink sink(
      [&](const char* data, size_t n) {
        wire.append(data, n);
        sends.push_back(n);
        return true;
      },
      1000);
  std::mt19937 rng(7);
  std::string want;
  for (int i = 0; i < 500; ++i) {
    // Mostly small writes (record headers, packets), now and then one larger than a chunk.
    size_t n = i % 97 == 0 ? 2500 : rng() % 120;
    std::string part(n, '\0');
    for (char& c : part) c = static_cast<char>(rng());
    want += part;
    ASSERT_TRUE(sink.Write(part.data(), part.size()).ok());
  }
  ASSERT_TRUE(sink.Finish("").ok());
  Decoded d = Decode(wire);
  EXPECT_TRUE(d.complete);
  EXPECT_EQ(d.payload, want);
  EXPECT_EQ(d.trailer, "");
  EXPECT_EQ(sink.written(), want.size());
  // One send per chunk plus the last chunk. A chunk holds at most 1000 bytes, and more than 880 (the next
  // write did not fit), except a write larger than a chunk, which goes alone.
  EXPECT_EQ(sends.size(), d.chunks.size() + 1);
  for (size_t i = 0; i + 1 < d.chunks.size(); ++i) {
    if (d.chunks[i] == 2500) continue;
    EXPECT_LE(d.chunks[i], 1000u) << i;
    if (d.chunks[i + 1] != 2500) EXPECT_GT(d.chunks[i], 880u) << i;
  }
}

TEST(HttpChunkSink, FinishSendsTheTrailerAfterTheLastChunk) {
  std::string wire;
  HttpChunkSink sink([&](const char* data, size_t n) {
    wire.append(data, n);
    return true;
  });
  ASSERT_TRUE(sink.Write("abc", 3).ok());
  ASSERT_TRUE(sink.Finish("Rewind-Result: complete\r\n").ok());
  EXPECT_EQ(wire, "00000003\r\nabc\r\n0\r\nRewind-Result: complete\r\n\r\n");
  Decoded d = Decode(wire);
  EXPECT_TRUE(d.complete);
  EXPECT_EQ(d.trailer, "Rewind-Result: complete\r\n");
}

TEST(HttpChunkSink, AnEmptyAnswerIsOnlyTheLastChunk) {
  std::string wire;
  HttpChunkSink sink([&](const char* data, size_t n) {
    wire.append(data, n);
    return true;
  });
  ASSERT_TRUE(sink.Flush().ok());
  ASSERT_TRUE(sink.Finish("").ok());
  EXPECT_EQ(wire, "0\r\n\r\n");
}

TEST(HttpChunkSink, WithoutFinishTheBodyNeverEnds) {
  std::string wire;
  {
    HttpChunkSink sink(
        [&](const char* data, size_t n) {
          wire.append(data, n);
          return true;
        },
        10);
    ASSERT_TRUE(sink.Write("0123456789", 10).ok());
    ASSERT_TRUE(sink.Write("abc", 3).ok());
    ASSERT_TRUE(sink.Flush().ok());
  }
  Decoded d = Decode(wire);
  EXPECT_FALSE(d.complete);
  EXPECT_EQ(d.payload, "0123456789abc");
}

TEST(HttpChunkSink, AClientThatWentAwayCancelsEveryLaterCall) {
  int sends = 0;
  HttpChunkSink sink(
      [&](const char*, size_t) {
        ++sends;
        return false;
      },
      4);
  ASSERT_TRUE(sink.Write("abcd", 4).ok());
  Status s = sink.Write("e", 1);  // the first chunk goes out and fails
  EXPECT_EQ(s.code(), Status::kCancelled);
  EXPECT_EQ(sink.Write("f", 1).code(), Status::kCancelled);
  EXPECT_EQ(sink.Flush().code(), Status::kCancelled);
  EXPECT_EQ(sink.Finish("").code(), Status::kCancelled);
  EXPECT_EQ(sends, 1);
  EXPECT_EQ(sink.written(), 0u);
}

}  // namespace
}  // namespace rwd
