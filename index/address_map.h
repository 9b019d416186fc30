// AddressMap: an open-addressing hash map from a 32-bit key (an IPv4 address) to its PostingListBuilder —
// the index's hottest lookup, a few per packet. Linear probing, power-of-two capacity, grows at half full;
// entries are never removed. Not thread-safe.
#ifndef REWIND_INDEX_ADDRESS_MAP_H_
#define REWIND_INDEX_ADDRESS_MAP_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/posting_list.h"

namespace rwd {

class AddressMap {
 public:
  AddressMap() : slots_(1024) {}

  PostingListBuilder& operator[](uint32_t key) {
    size_t mask = slots_.size() - 1;
    for (size_t i = Hash(key) & mask;; i = (i + 1) & mask) {
      Slot& s = slots_[i];
      if (s.used && s.key == key) return s.list;
      if (!s.used) {
        if ((size_ + 1) * 2 > slots_.size()) {
          Grow();
          return (*this)[key];
        }
        s.used = true;
        s.key = key;
        ++size_;
        return s.list;
      }
    }
  }

  size_t size() const { return size_; }
  // The list of `key`, or null.
  const PostingListBuilder* Find(uint32_t key) const {
    size_t mask = slots_.size() - 1;
    for (size_t i = Hash(key) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.key == key) return &s.list;
    }
  }
  // Calls fn(key, list) for every entry, in no particular order.
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const Slot& s : slots_) {
      if (s.used) fn(s.key, s.list);
    }
  }

 private:
  struct Slot {
    uint32_t key = 0;
    bool used = false;
    PostingListBuilder list;
  };
  static size_t Hash(uint32_t k) { return (static_cast<uint64_t>(k) * 0x9e3779b97f4a7c15ULL) >> 32; }
  void Grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.resize(old.size() * 2);
    size_ = 0;
    for (Slot& s : old) {
      if (!s.used) continue;
      size_t mask = slots_.size() - 1;
      size_t i = Hash(s.key) & mask;
      while (slots_[i].used) i = (i + 1) & mask;
      slots_[i].used = true;
      slots_[i].key = s.key;
      slots_[i].list = std::move(s.list);
      ++size_;
    }
  }
  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace rwd

#endif  // REWIND_INDEX_ADDRESS_MAP_H_
