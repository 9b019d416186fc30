#include "index/posting_list.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace rwd {
namespace {

using Positions = std::vector<uint32_t>;

std::string EncodeAll(const Positions& v) {
  PostingListBuilder b;
  for (uint32_t p : v) b.Add(p);
  return b.Encode();
}

Positions DecodeOk(const std::string& encoded) {
  Positions out;
  Status s = DecodePostingList(encoded, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

TEST(Varint32, EncodingsAreLevelDbCompatible) {
  struct Case {
    uint32_t v;
    std::string encoded;
  } cases[] = {
      {0, Bytes({0x00})},
      {1, Bytes({0x01})},
      {127, Bytes({0x7f})},
      {128, Bytes({0x80, 0x01})},
      {300, Bytes({0xac, 0x02})},
      {16383, Bytes({0xff, 0x7f})},
      {16384, Bytes({0x80, 0x80, 0x01})},
      {0xffffffffu, Bytes({0xff, 0xff, 0xff, 0xff, 0x0f})},
  };
  for (const Case& c : cases) {
    std::string s;
    PutVarint32(&s, c.v);
    EXPECT_EQ(s, c.encoded) << c.v;
    const char* p = s.data();
    uint32_t v = 12345;
    ASSERT_TRUE(GetVarint32(&p, s.data() + s.size(), &v)) << c.v;
    EXPECT_EQ(v, c.v);
    EXPECT_EQ(p, s.data() + s.size()) << "must consume exactly the encoding of " << c.v;
  }
}

TEST(Varint32, GetAdvancesPastOneValueOnly) {
  std::string s;
  PutVarint32(&s, 300);
  PutVarint32(&s, 5);
  const char* p = s.data();
  const char* limit = s.data() + s.size();
  uint32_t v = 0;
  ASSERT_TRUE(GetVarint32(&p, limit, &v));
  EXPECT_EQ(v, 300u);
  EXPECT_EQ(p, s.data() + 2);
  ASSERT_TRUE(GetVarint32(&p, limit, &v));
  EXPECT_EQ(v, 5u);
  EXPECT_EQ(p, limit);
  EXPECT_FALSE(GetVarint32(&p, limit, &v)) << "nothing left";
}

TEST(Varint32, TruncatedAndOverlongFail) {
  // Continuation bit set on the last available byte.
  for (const std::string& s : {Bytes({0x80}), Bytes({0xff, 0xff}), Bytes({0xff, 0xff, 0xff, 0xff}), std::string()}) {
    const char* p = s.data();
    uint32_t v = 0;
    EXPECT_FALSE(GetVarint32(&p, s.data() + s.size(), &v)) << "size " << s.size();
  }
  // Six bytes: longer than any 32-bit varint.
  std::string overlong = Bytes({0x80, 0x80, 0x80, 0x80, 0x80, 0x00});
  const char* p = overlong.data();
  uint32_t v = 0;
  EXPECT_FALSE(GetVarint32(&p, overlong.data() + overlong.size(), &v));
}

TEST(PostingList, EmptyRoundTrip) {
  PostingListBuilder b;
  EXPECT_EQ(b.size(), 0u);
  std::string enc = b.Encode();
  EXPECT_EQ(enc, Bytes({0x00}));  // just the count
  Positions out = {7};            // Decode appends
  ASSERT_TRUE(DecodePostingList(enc, &out).ok());
  EXPECT_EQ(out, Positions({7}));
}

TEST(PostingList, OneRoundTrip) {
  for (uint32_t p : {0u, 1u, 112u, 0x12345678u, 0xffffffffu}) {
    PostingListBuilder b;
    b.Add(p);
    EXPECT_EQ(b.size(), 1u);
    EXPECT_EQ(DecodeOk(b.Encode()), Positions({p})) << p;
  }
}

TEST(PostingList, EncodingIsCountThenDeltas) {
  // count 3, first value 5, then deltas 295 and 1.
  std::string expected = Bytes({0x03, 0x05, 0xa7, 0x02, 0x01});
  EXPECT_EQ(EncodeAll({5, 300, 301}), expected);
}

TEST(PostingList, ManyRoundTrip) {
  Positions v;
  // Realistic positions: a few packets per block over many blocks.
  for (uint32_t block = 0; block < 4096; block += 3) {
    for (uint32_t off = 112; off < 4000; off += 968) v.push_back(block << 20 | off);
  }
  std::string enc = EncodeAll(v);
  EXPECT_EQ(DecodeOk(enc), v);
  PostingListBuilder b;
  for (uint32_t p : v) b.Add(p);
  EXPECT_EQ(b.size(), v.size());
}

TEST(PostingList, LargeGapsRoundTrip) {
  Positions v = {0, 1, 0x7f, 0x80, 0x3fff, 0x4000, 0x1fffff, 0x200000, 0x0fffffff, 0x10000000, 0xfffffffe, 0xffffffff};
  EXPECT_EQ(DecodeOk(EncodeAll(v)), v);
  // The largest possible single gap.
  Positions extremes = {0, 0xffffffff};
  EXPECT_EQ(DecodeOk(EncodeAll(extremes)), extremes);
}

TEST(PostingList, RepeatsOfTheLastPositionAreIgnored) {
  PostingListBuilder b;
  for (uint32_t p : {0u, 0u, 0u, 10u, 10u, 20u, 20u, 20u, 21u}) b.Add(p);
  EXPECT_EQ(b.size(), 4u);
  EXPECT_EQ(DecodeOk(b.Encode()), Positions({0, 10, 20, 21}));
  EXPECT_EQ(b.Encode(), EncodeAll({0, 10, 20, 21}));
}

// The reference encoding: count, then each delta, through PutVarint32.
std::string ReferenceEncoding(const Positions& v) {
  std::string out;
  PutVarint32(&out, static_cast<uint32_t>(v.size()));
  for (size_t i = 0; i < v.size(); ++i) PutVarint32(&out, i == 0 ? v[0] : v[i] - v[i - 1]);
  return out;
}

TEST(PostingList, EveryLengthAcrossTheInlineBytesEncodesAsTheReference) {
  // Deltas of 1 to 5 bytes in turn, from each starting size, so the bytes cross the end of the inline buffer at
  // every offset and then grow on the heap. 40 positions stay below 2^32.
  const uint32_t deltas[] = {1, 200, 20000, 3000000, 300000000};
  for (uint32_t shift = 0; shift < 5; ++shift) {
    for (size_t n = 0; n <= 40; ++n) {
      Positions v;
      uint32_t p = 0;
      for (size_t i = 0; i < n; ++i) {
        p += deltas[(i + shift) % 5];
        v.push_back(p);
      }
      EXPECT_EQ(EncodeAll(v), ReferenceEncoding(v)) << "shift " << shift << ", " << n << " positions";
      EXPECT_EQ(DecodeOk(EncodeAll(v)), v);
    }
  }
}

TEST(PostingList, MovesKeepTheListInlineOrOnTheHeap) {
  Positions small = {3};                    // one byte: inline
  Positions big;                            // hundreds of bytes: on the heap
  for (uint32_t i = 0; i < 300; ++i) big.push_back(i * 1000);
  PostingListBuilder a, b;
  for (uint32_t p : small) a.Add(p);
  for (uint32_t p : big) b.Add(p);

  PostingListBuilder moved_small(std::move(a));
  PostingListBuilder moved_big(std::move(b));
  EXPECT_EQ(moved_small.Encode(), ReferenceEncoding(small));
  EXPECT_EQ(moved_big.Encode(), ReferenceEncoding(big));
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): a moved-from builder is empty and usable
  EXPECT_EQ(b.Encode(), ReferenceEncoding({}));  // NOLINT(bugprone-use-after-move)
  b.Add(7);
  EXPECT_EQ(b.Encode(), ReferenceEncoding({7}));

  // Assignment over a heap list frees it and takes the other's bytes; self-assignment changes nothing.
  moved_big = std::move(moved_small);
  EXPECT_EQ(moved_big.Encode(), ReferenceEncoding(small));
  PostingListBuilder& self = moved_big;
  moved_big = std::move(self);
  EXPECT_EQ(moved_big.Encode(), ReferenceEncoding(small));

  // In a vector that grows (moving every builder), each list keeps its positions.
  std::vector<PostingListBuilder> lists;
  for (uint32_t k = 0; k < 100; ++k) {
    lists.emplace_back();
    for (uint32_t i = 0; i <= k; ++i) lists.back().Add(i * (k + 1) * 977);
  }
  for (uint32_t k = 0; k < 100; ++k) {
    Positions want;
    for (uint32_t i = 0; i <= k; ++i) want.push_back(i * (k + 1) * 977);
    EXPECT_EQ(lists[k].Encode(), ReferenceEncoding(want)) << k;
  }
}

TEST(PostingList, DecodeAppendsToExistingContent) {
  Positions out = {1, 2};
  ASSERT_TRUE(DecodePostingList(EncodeAll({100, 200}), &out).ok());
  EXPECT_EQ(out, Positions({1, 2, 100, 200}));
}

TEST(PostingList, TruncatedIsCorruption) {
  std::string enc = EncodeAll({5, 300, 70000, 0x12345678});
  for (size_t n = 0; n < enc.size(); ++n) {
    Positions out;
    Status s = DecodePostingList(std::string_view(enc.data(), n), &out);
    EXPECT_EQ(s.code(), Status::kCorruption) << "prefix of " << n << " bytes: " << s.ToString();
  }
  // A varint cut in the middle: count 1, then a continuation byte with nothing after it.
  Positions out;
  EXPECT_EQ(DecodePostingList(Bytes({0x01, 0x80}), &out).code(), Status::kCorruption);
  // A count cut in the middle.
  EXPECT_EQ(DecodePostingList(Bytes({0x81}), &out).code(), Status::kCorruption);
}

TEST(PostingList, CountLargerThanInputIsCorruption) {
  Positions out;
  Status s = DecodePostingList(Bytes({0x7f, 0x01, 0x01}), &out);
  EXPECT_EQ(s.code(), Status::kCorruption) << s.ToString();
  // An absurd count must be refused before anything is reserved or decoded.
  s = DecodePostingList(Bytes({0xff, 0xff, 0xff, 0xff, 0x0f}), &out);
  EXPECT_EQ(s.code(), Status::kCorruption) << s.ToString();
  EXPECT_TRUE(out.empty());
}

TEST(PostingList, TrailingBytesAreCorruption) {
  std::string enc = EncodeAll({1, 2, 3});
  Positions out;
  Status s = DecodePostingList(enc + Bytes({0x00}), &out);
  EXPECT_EQ(s.code(), Status::kCorruption);
  EXPECT_NE(s.message().find("trailing"), std::string::npos) << s.message();
  // A count of zero followed by data.
  EXPECT_EQ(DecodePostingList(Bytes({0x00, 0x05}), &out).code(), Status::kCorruption);
}

TEST(PostingList, ZeroDeltaIsCorruption) {
  // count 3: 5, +0, +1 — not strictly increasing.
  Positions out;
  Status s = DecodePostingList(Bytes({0x03, 0x05, 0x00, 0x01}), &out);
  EXPECT_EQ(s.code(), Status::kCorruption);
  EXPECT_NE(s.message().find("increasing"), std::string::npos) << s.message();
  // A first value of zero is fine (position 0 is not a delta).
  out.clear();
  ASSERT_TRUE(DecodePostingList(Bytes({0x02, 0x00, 0x01}), &out).ok());
  EXPECT_EQ(out, Positions({0, 1}));
}

TEST(PostingList, DeltaThatWrapsAroundIsCorruption) {
  // count 2: 10, then +0xffffffff which would be 2^32 + 9.
  Positions out;
  Status s = DecodePostingList(Bytes({0x02, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}), &out);
  EXPECT_EQ(s.code(), Status::kCorruption) << "decoded " << out.size() << " positions";
}

TEST(PositionSets, Intersect) {
  EXPECT_EQ(IntersectPositions({}, {}), Positions());
  EXPECT_EQ(IntersectPositions({1, 2, 3}, {}), Positions());
  EXPECT_EQ(IntersectPositions({}, {1, 2, 3}), Positions());
  EXPECT_EQ(IntersectPositions({1, 3, 5, 7}, {2, 3, 4, 7, 9}), Positions({3, 7}));
  EXPECT_EQ(IntersectPositions({1, 2, 3}, {4, 5, 6}), Positions());
  EXPECT_EQ(IntersectPositions({0, 0xffffffff}, {0xffffffff}), Positions({0xffffffff}));
  EXPECT_EQ(IntersectPositions({10, 20, 30}, {10, 20, 30}), Positions({10, 20, 30}));
}

TEST(PositionSets, Union) {
  EXPECT_EQ(UnionPositions({}, {}), Positions());
  EXPECT_EQ(UnionPositions({1, 2}, {}), Positions({1, 2}));
  EXPECT_EQ(UnionPositions({}, {1, 2}), Positions({1, 2}));
  EXPECT_EQ(UnionPositions({1, 3, 5, 7}, {2, 3, 4, 7, 9}), Positions({1, 2, 3, 4, 5, 7, 9}));
  EXPECT_EQ(UnionPositions({10, 20}, {10, 20}), Positions({10, 20}));
  EXPECT_EQ(UnionPositions({0xffffffff}, {0}), Positions({0, 0xffffffff}));
}

TEST(PositionSets, Normalize) {
  Positions v = {5, 1, 5, 3, 0xffffffff, 1, 0, 3};
  NormalizePositions(&v);
  EXPECT_EQ(v, Positions({0, 1, 3, 5, 0xffffffff}));
  Positions empty;
  NormalizePositions(&empty);
  EXPECT_TRUE(empty.empty());
  Positions sorted = {1, 2, 3};
  NormalizePositions(&sorted);
  EXPECT_EQ(sorted, Positions({1, 2, 3}));
}

TEST(PositionSets, DecodedListsCombine) {
  Positions a, b;
  ASSERT_TRUE(DecodePostingList(EncodeAll({112, 1 << 20 | 112, 2 << 20 | 400}), &a).ok());
  ASSERT_TRUE(DecodePostingList(EncodeAll({1 << 20 | 112, 3 << 20 | 112}), &b).ok());
  EXPECT_EQ(IntersectPositions(a, b), Positions({1 << 20 | 112}));
  EXPECT_EQ(UnionPositions(a, b), Positions({112, 1 << 20 | 112, 2 << 20 | 400, 3 << 20 | 112}));
}

}  // namespace
}  // namespace rwd
