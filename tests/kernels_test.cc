// The CPU twins of the kernels against plain reference loops, for float and double, at sizes
// that are not multiples of any vector width, inside and outside tasks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "spindle/spindle.hpp"
#include "support/values.hpp"

namespace {

using spindle::testing::random_values;

namespace cpu = spindle::kernels::cpu;
using spindle::kernels::Adam;
using spindle::kernels::Reduction;
using spindle::kernels::Sgd;

template <typename T>
double tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}

template <typename T>
void expect_near_all(const std::vector<T>& got, const std::vector<T>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tolerance<T>() * (1 + std::abs(want[i]))) << "at " << i;
  }
}

const std::size_t kSizes[] = {0, 1, 7, 1001, 200'003};

template <typename T>
class CpuKernels : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(CpuKernels, Types);

TYPED_TEST(CpuKernels, SgdWithoutMomentumMatchesTheReferenceLoop) {
  using T = TypeParam;
  for (std::size_t n : kSizes) {
    auto p = random_values<T>(n, 1), g = random_values<T>(n, 2), want = p;
    Sgd options{.lr = 0.1, .weight_decay = 0.01};
    for (std::size_t i = 0; i < n; ++i) want[i] -= T(0.1) * (g[i] + T(0.01) * want[i]);
    cpu::sgd<T>(p.data(), g.data(), nullptr, n, options);
    expect_near_all(p, want);
  }
}

TYPED_TEST(CpuKernels, MomentumAndNesterovMatchTheReferenceLoop) {
  using T = TypeParam;
  for (bool nesterov : {false, true}) {
    for (std::size_t n : kSizes) {
      auto p = random_values<T>(n, 3), g = random_values<T>(n, 4), v = random_values<T>(n, 5);
      auto want_p = p, want_v = v;
      const T lr = T(0.05), mu = T(0.9), wd = T(0.001);
      for (std::size_t i = 0; i < n; ++i) {
        T d = g[i] + wd * want_p[i];
        want_v[i] = mu * want_v[i] + d;
        want_p[i] -= lr * (nesterov ? d + mu * want_v[i] : want_v[i]);
      }
      cpu::sgd<T>(p.data(), g.data(), v.data(), n,
                  {.lr = 0.05, .momentum = 0.9, .weight_decay = 0.001, .nesterov = nesterov});
      expect_near_all(p, want_p);
      expect_near_all(v, want_v);
    }
  }
}

TYPED_TEST(CpuKernels, AdamAndAdamWMatchTheReferenceLoop) {
  using T = TypeParam;
  for (bool decoupled : {false, true}) {
    for (std::size_t n : kSizes) {
      auto p = random_values<T>(n, 6), g = random_values<T>(n, 7);
      std::vector<T> m(n, T(0.01)), v(n, T(0.02));
      auto want_p = p, want_m = m, want_v = v;
      const double lr = 1e-2, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.1;
      const int step = 3;
      for (std::size_t i = 0; i < n; ++i) {
        double pi = want_p[i], gi = g[i];
        if (decoupled) {
          pi *= 1 - lr * wd;
        } else {
          gi += wd * want_p[i];
        }
        double mi = b1 * want_m[i] + (1 - b1) * gi;
        double vi = b2 * want_v[i] + (1 - b2) * gi * gi;
        double m_hat = mi / (1 - std::pow(b1, step)), v_hat = vi / (1 - std::pow(b2, step));
        want_p[i] = static_cast<T>(pi - lr * m_hat / (std::sqrt(v_hat) + eps));
        want_m[i] = static_cast<T>(mi);
        want_v[i] = static_cast<T>(vi);
      }
      cpu::adam<T>(p.data(), g.data(), m.data(), v.data(), n,
                   {.lr = lr, .weight_decay = wd, .decoupled = decoupled, .step = step});
      expect_near_all(p, want_p);
      expect_near_all(m, want_m);
      expect_near_all(v, want_v);
    }
  }
}

TYPED_TEST(CpuKernels, AggregateSumsAndAveragesKInputsInOrder) {
  using T = TypeParam;
  // Up to four inputs go straight to out; more add up in tiles, four at a time.
  for (unsigned count : {1u, 3u, 5u, 9u}) {
    for (Reduction reduction : {Reduction::sum, Reduction::mean}) {
      for (std::size_t n : kSizes) {
        std::vector<std::vector<T>> inputs;
        for (unsigned k = 0; k < count; ++k) inputs.push_back(random_values<T>(n, 10 + k));
        std::vector<const T*> pointers;
        for (const auto& input : inputs) pointers.push_back(input.data());
        std::vector<T> want(n), out(n, T(42));
        for (std::size_t i = 0; i < n; ++i) {
          T sum = 0;
          for (const auto& input : inputs) sum += input[i];
          want[i] = reduction == Reduction::mean ? sum * (T(1) / T(count)) : sum;
        }
        cpu::aggregate<T>(out.data(), pointers, n, reduction);
        expect_near_all(out, want);
        // The output may be one of the inputs.
        cpu::aggregate<T>(inputs[count / 2].data(), pointers, n, reduction);
        expect_near_all(inputs[count / 2], want);
      }
    }
  }
}

TYPED_TEST(CpuKernels, BlasOneOperationsMatchTheReferenceLoops) {
  using T = TypeParam;
  for (std::size_t n : kSizes) {
    auto x = random_values<T>(n, 20), y = random_values<T>(n, 21);
    auto want_y = y;
    for (std::size_t i = 0; i < n; ++i) want_y[i] += T(0.5) * x[i];
    cpu::axpy<T>(y.data(), T(0.5), x.data(), n);
    expect_near_all(y, want_y);
    cpu::axpy<T>(x.data(), T(1), x.data(), n);  // y identical to x is allowed
    auto doubled = random_values<T>(n, 20);
    for (T& v : doubled) v *= 2;
    expect_near_all(x, doubled);

    auto s = random_values<T>(n, 22), want_s = s;
    for (T& v : want_s) v *= T(-3);
    cpu::scale<T>(s.data(), T(-3), n);
    expect_near_all(s, want_s);

    std::vector<T> f(n, T(1));
    cpu::fill<T>(f.data(), T(2.5), n);
    expect_near_all(f, std::vector<T>(n, T(2.5)));

    auto a = random_values<T>(n, 23), b = random_values<T>(n, 24);
    double want_dot = 0, want_sq = 0;
    for (std::size_t i = 0; i < n; ++i) {
      want_dot += double(a[i]) * b[i];
      want_sq += double(a[i]) * a[i];
    }
    T got_dot = -1, got_norm = -1;
    cpu::dot<T>(a.data(), b.data(), n, &got_dot);
    cpu::norm2<T>(a.data(), n, &got_norm);
    double scale_of_sum = 1 + std::sqrt(static_cast<double>(n));
    EXPECT_NEAR(got_dot, want_dot, tolerance<T>() * 10 * scale_of_sum) << "n = " << n;
    EXPECT_NEAR(got_norm, std::sqrt(want_sq), tolerance<T>() * 10 * scale_of_sum) << "n = " << n;
  }
}

TEST(CpuKernelsInTasks, LargeArraysAreSplitAcrossWorkersWithTheSameResults) {
  spindle::Runtime rt({.num_cpus = 2, .num_workers = 2});
  const std::size_t n = 1'000'003;
  auto a = random_values<double>(n, 30), b = random_values<double>(n, 31);
  double outside = 0;
  cpu::dot<double>(a.data(), b.data(), n, &outside);
  auto x = random_values<float>(n, 32), y = x;
  cpu::scale<float>(y.data(), 2.0f, n);

  std::size_t before = rt.status().finished;
  auto inside = rt.task([&] {
                    double result = 0;
                    cpu::dot<double>(a.data(), b.data(), n, &result);
                    cpu::scale<float>(x.data(), 2.0f, n);
                    return result;
                  }).remote();
  // Bitwise equal: the blocks and their order do not depend on the number of workers.
  EXPECT_EQ(inside.get(), outside);
  EXPECT_EQ(x, y);
  // The task itself and at least one piece per operation ran as tasks.
  EXPECT_GE(rt.status().finished - before, 3u);
}

TEST(CpuKernelsInput, BadOptionsAndStreamsAreRejectedNamingTheValue) {
  std::vector<double> p(4), g(4), m(4), v(4);
  auto message = [](auto&& call) {
    return spindle::testing::error_of<spindle::InvalidArgumentError>(call);
  };
  EXPECT_EQ(message([&] { cpu::sgd<double>(p.data(), g.data(), nullptr, 4, {.lr = -1}); }),
            "lr = -1: must be finite and at least 0");
  EXPECT_EQ(message([&] { cpu::sgd<double>(p.data(), g.data(), nullptr, 4, {.momentum = 0.9}); }),
            "velocity is null: momentum = 0.9 needs a velocity array");
  EXPECT_EQ(message([&] { cpu::sgd<double>(p.data(), g.data(), v.data(), 4, {.nesterov = true}); }),
            "momentum = 0: nesterov needs a momentum above 0");
  EXPECT_EQ(
      message([&] { cpu::adam<double>(p.data(), g.data(), m.data(), v.data(), 4, {.beta1 = 1}); }),
      "beta1 = 1: must be in [0, 1)");
  EXPECT_EQ(
      message([&] { cpu::adam<double>(p.data(), g.data(), m.data(), v.data(), 4, {.step = 0}); }),
      "step = 0: counts from 1 (the first update)");
  EXPECT_EQ(message([&] { cpu::aggregate<double>(p.data(), {}, 4, Reduction::sum); }),
            "inputs: 0 given; between 1 and 256 are allowed");
  std::vector<const double*> with_null = {g.data(), nullptr};
  EXPECT_EQ(message([&] { cpu::aggregate<double>(p.data(), with_null, 4, Reduction::sum); }),
            "inputs[1] is null: n = 4 elements need memory");
  EXPECT_EQ(message([&] { cpu::fill<double>(p.data(), 1.0, 4, spindle::Stream(0, nullptr)); }),
            "kernels::cpu::fill: the stream is GPU 0's; the host stream is needed");
}

}  // namespace
