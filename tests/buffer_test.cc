// Buffers, devices and ops on a machine without a GPU (or with one: the GPU-only cases are in
// cuda_device_test): host and pinned memory, copies, checks, streams, the object store.
#include <gtest/gtest.h>

#include <fstream>
#include <numeric>
#include <sstream>
#include <vector>

#include "spindle/spindle.hpp"
#include "support/values.hpp"

namespace {

using spindle::testing::error_of;

using spindle::Buffer;
using spindle::Location;

TEST(Buffer, StartsZeroedAndCopiesInAndOut) {
  Buffer<double> zeros(5, Location::host());
  EXPECT_EQ(zeros.size(), 5u);
  EXPECT_EQ(zeros.size_bytes(), 40u);
  EXPECT_EQ(zeros.to_vector(), std::vector<double>(5, 0.0));

  std::vector<double> values = {1, 2, 3, 4, 5};
  Buffer<double> b(values, Location::host());
  EXPECT_EQ(b.to_vector(), values);
  std::vector<double> out(5);
  b.copy_to(out);
  EXPECT_EQ(out, values);
  zeros.copy_from(b);
  EXPECT_EQ(zeros.to_vector(), values);
  zeros.copy_from(std::vector<double>{5, 4, 3, 2, 1});
  EXPECT_EQ(zeros.host_span()[0], 5.0);
}

TEST(Buffer, PinnedMemoryIsUsedWhenAGpuExistsAndHostMemoryOtherwise) {
  Buffer<float> pinned(std::vector<float>{1, 2, 3}, Location::pinned());
  Location want = spindle::device_count() > 0 ? Location::pinned() : Location::host();
  EXPECT_EQ(pinned.location(), want);
  Buffer<float> back = pinned.to(Location::host());
  EXPECT_EQ(back.to_vector(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(back.location(), Location::host());
}

TEST(Buffer, AViewReadsTheCallersMemoryWithoutACopy) {
  std::vector<float> values{1, 2, 3};
  {
    std::shared_ptr<const spindle::Buffer<float>> view = spindle::Buffer<float>::view(values);
    EXPECT_EQ(view->data(), values.data());
    EXPECT_EQ(view->size(), 3u);
    EXPECT_FALSE(view->location().on_gpu());
    EXPECT_EQ(view->to_vector(), values);
    spindle::Buffer<float> copy = view->to(spindle::Location::host());
    EXPECT_NE(copy.data(), values.data());
  }  // the view's end frees nothing: the memory is still the vector's
  values.push_back(4);
  EXPECT_EQ(values, (std::vector<float>{1, 2, 3, 4}));
}

TEST(Buffer, MovingLeavesAnEmptyBuffer) {
  Buffer<int> a(std::vector<int>{1, 2}, Location::host());
  Buffer<int> b = std::move(a);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): the moved-from state is defined
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.to_vector(), (std::vector<int>{1, 2}));
  Buffer<int> empty(0, Location::host());
  EXPECT_TRUE(empty.empty());
  EXPECT_TRUE(empty.to_vector().empty());
}

TEST(Buffer, SizeMismatchMissingDeviceAndHugeSizesAreClearErrors) {
  Buffer<double> b(3, Location::host());
  EXPECT_EQ(error_of([&] { b.copy_from(std::vector<double>(4)); }),
            "copy_from: the source has 4 elements; the buffer has 3 and sizes must match");
  EXPECT_EQ(error_of([&] { b.copy_from(Buffer<double>(2, Location::host())); }),
            "copy_from: the source buffer has 2 elements; the buffer has 3 and sizes must match");
  int gpus = spindle::device_count();
  std::string missing = error_of([&] { Buffer<double> x(3, Location::gpu(gpus)); });
  EXPECT_EQ(missing.rfind("Buffer: GPU " + std::to_string(gpus) + " does not exist; ", 0), 0u)
      << missing;
  EXPECT_EQ(error_of([] { Buffer<double> x(std::size_t{1} << 62, Location::host()); }),
            "size = 4611686018427387904: at most 1152921504606846975 elements of 8 bytes are "
            "allowed");
  EXPECT_EQ(error_of([] { Buffer<char> x(std::size_t{1} << 55, Location::host()); }),
            "allocating 36028797018963968 bytes of host memory failed");
}

TEST(Ops, RunOnTheHostAndCheckPlaceAndSize) {
  Buffer<float> p(std::vector<float>{1, 2, 3}, Location::host());
  Buffer<float> g(std::vector<float>{1, 1, 1}, Location::pinned());  // one place with host
  spindle::ops::sgd(p, g, {.lr = 0.5});
  EXPECT_EQ(p.to_vector(), (std::vector<float>{0.5f, 1.5f, 2.5f}));
  EXPECT_FLOAT_EQ(spindle::ops::dot(p, g), 4.5f);
  spindle::ops::fill(g, 2.0f);
  spindle::ops::axpy(p, 1.0f, g);
  spindle::ops::scale(p, 2.0f);
  EXPECT_EQ(p.to_vector(), (std::vector<float>{5, 7, 9}));
  EXPECT_FLOAT_EQ(spindle::ops::norm2(Buffer<float>(std::vector<float>{3, 4}, Location::host())),
                  5.0f);
  Buffer<float> out(3, Location::host());
  std::vector<const Buffer<float>*> inputs = {&p, &g};
  spindle::ops::aggregate<float>(out, inputs, spindle::ops::Reduction::mean);
  EXPECT_EQ(out.to_vector(), (std::vector<float>{3.5f, 4.5f, 5.5f}));

  Buffer<float> m(3, Location::host()), v(3, Location::host()), short_grad(2, Location::host());
  spindle::ops::adam(p, g, m, v, {.lr = 0.1});
  EXPECT_LT(p.to_vector()[0], 5.0f);
  EXPECT_EQ(error_of([&] { spindle::ops::sgd(p, short_grad, {.lr = 0.1}); }),
            "ops::sgd: grad has 2 elements but params has 3; sizes must match");
  EXPECT_EQ(error_of([&] { spindle::ops::sgd(p, g, {.momentum = 0.9}); }),
            "ops::sgd: momentum = 0.900000 needs a velocity buffer: call sgd(params, grad, "
            "velocity, options)");
}

TEST(Device, TasksOnLogicalGpusRunOnTheHost) {
  // Declared GPUs with no device behind them: placement works, memory and streams are the
  // host's, and ops run their CPU twins.
  spindle::Runtime rt({.num_cpus = 2, .num_gpus = spindle::device_count() + 2.0});
  auto where = rt.task([] {
                   Buffer<double> b(4);
                   spindle::ops::fill(b, 1.5);
                   return std::make_tuple(spindle::this_task::gpu_ids().size(),
                                          spindle::Location::here(), b.location(),
                                          spindle::this_task::stream(), spindle::ops::norm2(b));
                 }).options({.num_gpus = 1, .name = "logical"});
  // GPU ids at or above device_count() are logical.
  auto [ids, here, at, stream, norm] = where.remote().get();
  EXPECT_EQ(ids, 1u);
  EXPECT_EQ(norm, 3.0);
  if (spindle::device_count() == 0) {
    EXPECT_EQ(here, Location::host());
    EXPECT_EQ(at, Location::host());
    EXPECT_EQ(stream, spindle::Stream());
  }
  EXPECT_EQ(spindle::Stream().location(), Location::host());
}

TEST(Device, AStoredHostBufferReachesHostConsumersWithoutACopy) {
  spindle::Runtime rt({.num_cpus = 2});
  Buffer<int> values(std::vector<int>{1, 2, 3}, Location::host());
  const int* address = values.data();
  auto ref = rt.put(std::move(values));
  auto seen = rt.task([](const Buffer<int>& b) {
                  return std::make_pair(
                      b.data(), std::accumulate(b.host_span().begin(), b.host_span().end(), 0));
                }).remote(ref);
  EXPECT_EQ(seen.get().first, address);
  EXPECT_EQ(seen.get().second, 6);
  EXPECT_EQ(&ref.get().replica(Location::pinned()), &ref.get());
}

// A buffer_memory_limit makes the device as full as that: a task asking for more than is left
// fails with a DeviceError naming the sizes; buffers already made stay, other work goes on, and
// memory freed can be had again. Buffers made outside tasks do not count.
TEST(Device, ABufferMemoryLimitFailsOnlyTheTaskThatExceedsIt) {
  constexpr std::size_t kLimit = 1 << 20;
  constexpr std::size_t kKiB = 1024;
  spindle::Runtime rt({.num_cpus = 2, .buffer_memory_limit = kLimit});
  struct Holder {
    std::size_t keep(std::size_t bytes) {
      kept.emplace_back(std::vector<char>(bytes, 'k'), Location::host());
      return held();
    }
    [[nodiscard]] std::size_t held() const {
      std::size_t bytes = 0;
      for (const auto& buffer : kept) bytes += buffer.size();
      return bytes;
    }
    void drop() { kept.clear(); }
    std::vector<Buffer<char>> kept;
  };
  auto holder = rt.actor<Holder>().remote();
  // Allocates a Buffer and frees it before the result is published.
  auto make = rt.task([](std::size_t bytes) { return Buffer<char>(bytes, Location::host()).size(); });

  ASSERT_EQ(holder.call(&Holder::keep, 600 * kKiB).get(), 600 * kKiB);
  auto over = make.remote(600 * kKiB);
  try {
    (void)over.get();
    FAIL() << "a Buffer past the limit was made";
  } catch (const spindle::TaskError& error) {
    std::string message = error.what();
    EXPECT_NE(message.find("a Buffer of 614400 bytes on the host would exceed the runtime's "
                           "buffer_memory_limit of 1048576 bytes per device: 614400 bytes are "
                           "in use there"),
              std::string::npos)
        << message;
    EXPECT_THROW(std::rethrow_if_nested(error), spindle::DeviceError);
  }
  EXPECT_EQ(make.remote(400 * kKiB).get(), 400 * kKiB);
  EXPECT_EQ(holder.call(&Holder::keep, 400 * kKiB).get(), 1000 * kKiB);
  EXPECT_THROW((void)holder.call(&Holder::keep, 100 * kKiB).get(), spindle::TaskError);
  EXPECT_EQ(holder.call(&Holder::held).get(), 1000 * kKiB);  // the failed call lost nothing

  Buffer<char> outside(2 * kLimit, Location::host());  // outside tasks: not counted
  holder.call(&Holder::drop).get();
  EXPECT_EQ(make.remote(kLimit).get(), kLimit);

  EXPECT_EQ(error_of<spindle::InvalidArgumentError>(
                [] { spindle::Runtime bad({.buffer_memory_limit = 0}); }),
            "buffer_memory_limit = 0: give a number of bytes above 0, or leave it unset for no "
            "limit");
}

TEST(Device, LocationsPrintTheirPlace) {
  EXPECT_EQ(Location::host().to_string(), "host");
  EXPECT_EQ(Location::pinned().to_string(), "pinned host");
  EXPECT_EQ(Location::gpu(3).to_string(), "GPU 3");
  EXPECT_TRUE(Location::gpu(0).on_gpu());
  EXPECT_FALSE(Location::pinned().on_gpu());
}

}  // namespace
