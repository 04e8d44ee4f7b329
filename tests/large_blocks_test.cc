// Large-block reuse (spindle/large_blocks.hpp), linked into this test program: freed large
// blocks come back for requests that fit them, within the limit, and only while enabled.
// operator new is called as a function, which the compiler may not elide.
#include <gtest/gtest.h>

#include <cstddef>
#include <new>
#include <vector>

#include "spindle/large_blocks.hpp"
#include "spindle/spindle.hpp"

namespace {

namespace blocks = spindle::large_blocks;
constexpr std::size_t kMiB = std::size_t{1} << 20;

class LargeBlocks : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!blocks::available()) {
      GTEST_SKIP() << "a sanitizer build: its runtime defines operator new, and large-block "
                      "reuse replaces nothing here";
    }
    blocks::set_enabled(true);
    blocks::set_limit(std::size_t{1} << 30);
    blocks::release();
  }
  void TearDown() override {
    if (!blocks::available()) return;
    blocks::set_limit(std::size_t{1} << 30);
    blocks::release();
  }
};

TEST_F(LargeBlocks, AFreedBlockServesTheNextRequestThatFitsIt) {
  void* first = ::operator new(8 * kMiB);
  ::operator delete(first);
  EXPECT_GE(blocks::stats().kept_bytes, 8 * kMiB);
  const auto reused = blocks::stats().reused;
  void* again = ::operator new(7 * kMiB);  // at least 4/5 of the kept block
  EXPECT_EQ(again, first);
  EXPECT_EQ(blocks::stats().reused, reused + 1);
  EXPECT_EQ(blocks::stats().kept_bytes, 0u);
  ::operator delete(again);
}

TEST_F(LargeBlocks, ARequestMuchSmallerThanAKeptBlockGetsItsOwn) {
  void* big = ::operator new(16 * kMiB);
  ::operator delete(big);
  const auto reused = blocks::stats().reused;
  void* small = ::operator new(4 * kMiB);
  EXPECT_NE(small, big);
  EXPECT_EQ(blocks::stats().reused, reused);
  EXPECT_GE(blocks::stats().kept_bytes, 16 * kMiB);  // still kept for a request that fits
  ::operator delete(small);
}

TEST_F(LargeBlocks, SmallBlocksAreLeftToMalloc) {
  const auto before = blocks::stats();
  std::vector<void*> small;
  for (int i = 0; i < 100; ++i) small.push_back(::operator new(64 * 1024));
  for (void* block : small) ::operator delete(block);
  EXPECT_EQ(blocks::stats().reused, before.reused);
  EXPECT_EQ(blocks::stats().allocated, before.allocated);
  EXPECT_EQ(blocks::stats().kept_bytes, 0u);
}

TEST_F(LargeBlocks, NothingIsKeptPastTheLimitOrWhileDisabled) {
  blocks::set_limit(4 * kMiB);
  void* block = ::operator new(8 * kMiB);
  ::operator delete(block);
  EXPECT_EQ(blocks::stats().kept_bytes, 0u);

  blocks::set_limit(std::size_t{1} << 30);
  blocks::set_enabled(false);
  EXPECT_FALSE(blocks::enabled());
  block = ::operator new(8 * kMiB);
  ::operator delete(block);
  EXPECT_EQ(blocks::stats().kept_bytes, 0u);
}

TEST_F(LargeBlocks, ReleaseGivesKeptBlocksBack) {
  for (std::size_t mb : {2, 4, 8}) ::operator delete(::operator new(mb * kMiB));
  EXPECT_GE(blocks::stats().kept_bytes, 14 * kMiB);
  blocks::release();
  EXPECT_EQ(blocks::stats().kept_bytes, 0u);
}

// The program the option is for: an actor returns large vectors by value, tasks read them.
TEST_F(LargeBlocks, LargeResultsOfAnActorReuseTheirMemory) {
  struct Producer {
    std::vector<double> make(int i) const { return std::vector<double>(kMiB, i); }
  };
  spindle::Runtime rt({.num_cpus = 2});
  auto producer = rt.actor<Producer>().remote();
  auto first = rt.task([](const std::vector<double>& v) { return v.front(); });
  const auto before = blocks::stats().reused;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(first.remote(producer.call(&Producer::make, i)).get(), i);
  EXPECT_GE(blocks::stats().reused, before + 8);  // each value after the first two or so
}

}  // namespace
