// PostingList: a sorted list of packet positions (see block_format.h), stored as a varint count followed by
// varint deltas. PostingListBuilder is not thread-safe; the free functions are.
#ifndef REWIND_INDEX_POSTING_LIST_H_
#define REWIND_INDEX_POSTING_LIST_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "index/status.h"

namespace rwd {

inline void PutVarint32(std::string* dst, uint32_t v) {
  char buf[5];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  dst->append(buf, n);
}

class PostingListBuilder {
 public:
  PostingListBuilder() = default;
  PostingListBuilder(PostingListBuilder&& other) noexcept { TakeFrom(&other); }
  PostingListBuilder& operator=(PostingListBuilder&& other) noexcept {
    if (this != &other) {
      Free();
      TakeFrom(&other);
    }
    return *this;
  }
  PostingListBuilder(const PostingListBuilder&) = delete;
  PostingListBuilder& operator=(const PostingListBuilder&) = delete;
  ~PostingListBuilder() { Free(); }

  // Positions must be added in non-decreasing order; a repeat of the last one is ignored.
  void Add(uint32_t position) {
    if (count_ > 0 && position == last_) return;
    uint32_t v = count_ == 0 ? position : position - last_;
    if (capacity_ - size_ < kMaxVarint32Bytes) Grow();
    uint8_t* p = data() + size_;
    while (v >= 0x80) {
      *p++ = static_cast<uint8_t>(v | 0x80);
      v >>= 7;
    }
    *p++ = static_cast<uint8_t>(v);
    size_ = static_cast<uint32_t>(p - data());
    last_ = position;
    ++count_;
  }
  uint32_t size() const { return count_; }
  // The encoded list (count prefix included).
  std::string Encode() const;
  size_t memory() const { return sizeof(*this) + (capacity_ > kInlineBytes ? capacity_ : 0); }

 private:
  static constexpr uint32_t kMaxVarint32Bytes = 5;
  static constexpr uint32_t kInlineBytes = 8;

  uint8_t* data() { return capacity_ > kInlineBytes ? heap_ : inline_; }
  const uint8_t* data() const { return capacity_ > kInlineBytes ? heap_ : inline_; }
  // Out of line: taken about once per doubling, so Add() stays small enough to inline in the indexing loop.
  void Grow();
  void Free() {
    if (capacity_ > kInlineBytes) delete[] heap_;
  }
  void TakeFrom(PostingListBuilder* other) {
    std::memcpy(static_cast<void*>(this), other, sizeof(*this));
    other->capacity_ = kInlineBytes;
    other->size_ = 0;
    other->count_ = 0;
  }

  // The varint deltas: bytes [0, size_) of data(), which holds capacity_ bytes — inline_ while they fit in
  // kInlineBytes (most keys of a file have a packet or two), then heap_, owned. Appended in place: an index
  // adds several per packet, and std::string's out-of-line append cost more than the encoding.
  union {
    uint8_t inline_[kInlineBytes] = {};
    uint8_t* heap_;
  };
  uint32_t size_ = 0;
  uint32_t capacity_ = kInlineBytes;
  uint32_t count_ = 0;
  uint32_t last_ = 0;
};

// Decodes an encoded list and appends its positions to `*out`.
Status DecodePostingList(std::string_view encoded, std::vector<uint32_t>* out);

// Set operations on sorted, duplicate-free position vectors.
std::vector<uint32_t> IntersectPositions(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b);
std::vector<uint32_t> UnionPositions(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b);
// Sorts and removes duplicates in place.
void NormalizePositions(std::vector<uint32_t>* v);

// Parses a varint from [*p, limit); advances *p. False if truncated or too long.
bool GetVarint32(const char** p, const char* limit, uint32_t* v);

}  // namespace rwd

#endif  // REWIND_INDEX_POSTING_LIST_H_
