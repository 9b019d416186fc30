#include "index/posting_list.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace rwd {

bool GetVarint32(const char** p, const char* limit, uint32_t* v) {
  uint32_t result = 0;
  for (int shift = 0; shift <= 28 && *p < limit; shift += 7) {
    uint32_t byte = static_cast<uint8_t>(**p);
    ++*p;
    result |= (byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *v = result;
      return true;
    }
  }
  return false;
}

void PostingListBuilder::Grow() {
  // Cannot overflow: a list holds at most one varint (at most 5 bytes) per packet position, and positions are
  // 32-bit with at least 48 bytes between two of them (block_format.h), so it stays below 2^31 bytes.
  uint32_t capacity = capacity_ < 32 ? 32 : capacity_ * 2;
  uint8_t* bytes = new uint8_t[capacity];
  std::memcpy(bytes, data(), size_);
  Free();
  heap_ = bytes;
  capacity_ = capacity;
}

std::string PostingListBuilder::Encode() const {
  std::string out;
  out.reserve(size_ + kMaxVarint32Bytes);
  PutVarint32(&out, count_);
  out.append(reinterpret_cast<const char*>(data()), size_);
  return out;
}

Status DecodePostingList(std::string_view encoded, std::vector<uint32_t>* out) {
  const char* p = encoded.data();
  const char* limit = p + encoded.size();
  uint32_t count = 0;
  if (!GetVarint32(&p, limit, &count) || count > encoded.size()) {
    return Status::Corruption("bad posting list header");
  }
  out->reserve(out->size() + count);
  uint32_t pos = 0;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t delta = 0;
    if (!GetVarint32(&p, limit, &delta)) return Status::Corruption("truncated posting list");
    if (i > 0 && (delta == 0 || delta > UINT32_MAX - pos)) {
      return Status::Corruption("posting list not strictly increasing");
    }
    pos = i == 0 ? delta : pos + delta;
    out->push_back(pos);
  }
  if (p != limit) return Status::Corruption("trailing bytes after posting list");
  return Status::OK();
}

std::vector<uint32_t> IntersectPositions(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  std::vector<uint32_t> out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::vector<uint32_t> UnionPositions(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  std::vector<uint32_t> out;
  out.reserve(a.size() + b.size());
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

void NormalizePositions(std::vector<uint32_t>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
}

}  // namespace rwd
