// ops: checks where the buffers are, then runs the CUDA kernel or the CPU twin.
#include "spindle/ops.hpp"

#include <array>
#include <initializer_list>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "device/device_runtime.hpp"

namespace spindle::ops {
namespace {

struct Operand {
  const char* name;
  Location location;
  std::size_t size;
};

// The one place all operands live; throws naming the first that differs in place or size.
Location place_of(const char* operation, std::initializer_list<Operand> operands) {
  const Operand& first = *operands.begin();
  for (const Operand& operand : operands) {
    if (detail::needs_copy(operand.location, first.location)) {
      throw DeviceError(std::string(operation) + ": " + operand.name + " is on " +
                        operand.location.to_string() + " but " + first.name + " is on " +
                        first.location.to_string() +
                        "; an operation's buffers must be in one place (copy with Buffer::to)");
    }
    if (operand.size != first.size) {
      throw InvalidArgumentError(std::string(operation) + ": " + operand.name + " has " +
                                 std::to_string(operand.size) + " elements but " + first.name +
                                 " has " + std::to_string(first.size) + "; sizes must match");
    }
  }
  return first.location;
}

template <typename T>
Operand operand(const char* name, const Buffer<T>& buffer) {
  return {name, buffer.location(), buffer.size()};
}

// Orders a stream for the buffers an operation touches: after the last write of each buffer
// it reads, after every use of each buffer it writes. The argument's constness says which,
// as in the operations' own signatures.
template <typename T>
void order(Stream stream, Buffer<T>& written) {
  written.write_on(stream);
}
template <typename T>
void order(Stream stream, const Buffer<T>& read) {
  read.read_on(stream);
}
template <typename... Buffers>
auto touched(Buffers&... buffers) {
  return [&buffers...](Stream stream) { (order(stream, buffers), ...); };
}

// Runs `cpu` on the host stream, or `gpu` on the location's stream once `order` has ordered
// that stream for the buffers touched.
template <typename Order, typename Cpu, typename Gpu>
void run_at(Location location, Order order, Cpu cpu, [[maybe_unused]] Gpu gpu) {
#ifdef SPINDLE_HAVE_CUDA
  if (location.on_gpu()) {
    Stream stream = detail::stream_for(location);
    order(stream);
    gpu(stream);
    return;
  }
#endif
  cpu(Stream());
  (void)location;
  (void)order;
}

// A scalar result: computed into a one-element buffer where the operands are, then read
// back (through a small pinned slot).
template <typename T, typename Order, typename Cpu, typename Gpu>
T scalar_at(Location location, Order order, Cpu cpu, Gpu gpu) {
  if (!location.on_gpu()) {
    T result{};
    cpu(&result, Stream());
    return result;
  }
  Buffer<T> result = Buffer<T>::uninitialized(1, location);
  run_at(
      location, order, [](Stream) {}, [&](Stream stream) { gpu(result.data(), stream); });
  T value{};
  result.copy_to(std::span<T>(&value, 1));
  return value;
}

}  // namespace

// The kernels' own checks run inside; these name the buffers.
#ifdef SPINDLE_HAVE_CUDA
#define SPINDLE_ON_BOTH(call) \
  [&](Stream stream) { kernels::cpu::call; }, [&](Stream stream) { kernels::cuda::call; }
#define SPINDLE_SCALAR_ON_BOTH(call)                     \
  [&](T* result, Stream stream) { kernels::cpu::call; }, \
      [&](T* result, Stream stream) { kernels::cuda::call; }
#else
#define SPINDLE_ON_BOTH(call) [&](Stream stream) { kernels::cpu::call; }, [](Stream) {}
#define SPINDLE_SCALAR_ON_BOTH(call) \
  [&](T* result, Stream stream) { kernels::cpu::call; }, [](T*, Stream) {}
#endif

template <typename T>
void sgd(Buffer<T>& params, const Buffer<T>& grad, const Sgd& options) {
  if (options.momentum != 0) {
    throw InvalidArgumentError("ops::sgd: momentum = " + std::to_string(options.momentum) +
                               " needs a velocity buffer: call sgd(params, grad, velocity, "
                               "options)");
  }
  Location at = place_of("ops::sgd", {operand("params", params), operand("grad", grad)});
  run_at(at, touched(params, grad),
         SPINDLE_ON_BOTH(sgd(params.data(), grad.data(), static_cast<T*>(nullptr), params.size(),
                             options, stream)));
}

template <typename T>
void sgd(Buffer<T>& params, const Buffer<T>& grad, Buffer<T>& velocity, const Sgd& options) {
  Location at = place_of("ops::sgd", {operand("params", params), operand("grad", grad),
                                      operand("velocity", velocity)});
  run_at(at, touched(params, grad, velocity),
         SPINDLE_ON_BOTH(
             sgd(params.data(), grad.data(), velocity.data(), params.size(), options, stream)));
}

template <typename T>
void adam(Buffer<T>& params, const Buffer<T>& grad, Buffer<T>& m, Buffer<T>& v,
          const Adam& options) {
  Location at = place_of("ops::adam", {operand("params", params), operand("grad", grad),
                                       operand("m", m), operand("v", v)});
  run_at(at, touched(params, grad, m, v),
         SPINDLE_ON_BOTH(
             adam(params.data(), grad.data(), m.data(), v.data(), params.size(), options, stream)));
}

template <typename T>
void aggregate(Buffer<T>& out, std::span<const Buffer<T>* const> inputs, Reduction reduction) {
  std::vector<const T*> pointers;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k]) {
      throw InvalidArgumentError("ops::aggregate: inputs[" + std::to_string(k) + "] is null");
    }
    std::string name = "inputs[" + std::to_string(k) + "]";
    place_of("ops::aggregate", {operand("out", out), operand(name.c_str(), *inputs[k])});
    pointers.push_back(inputs[k]->data());
  }
  std::span<const T* const> in(pointers);
  auto order = [&](Stream stream) {
    for (const Buffer<T>* input : inputs) input->read_on(stream);
    out.write_on(stream);  // after the reads: out may be one of the inputs
  };
  run_at(out.location(), order,
         SPINDLE_ON_BOTH(aggregate(out.data(), in, out.size(), reduction, stream)));
}

template <typename T>
void axpy(Buffer<T>& y, T a, const Buffer<T>& x) {
  Location at = place_of("ops::axpy", {operand("y", y), operand("x", x)});
  run_at(at, touched(y, x), SPINDLE_ON_BOTH(axpy(y.data(), a, x.data(), y.size(), stream)));
}

template <typename T>
void scale(Buffer<T>& x, T a) {
  run_at(x.location(), touched(x), SPINDLE_ON_BOTH(scale(x.data(), a, x.size(), stream)));
}

template <typename T>
void fill(Buffer<T>& x, T value) {
  run_at(x.location(), touched(x), SPINDLE_ON_BOTH(fill(x.data(), value, x.size(), stream)));
}

template <typename T>
T dot(const Buffer<T>& a, const Buffer<T>& b) {
  Location at = place_of("ops::dot", {operand("a", a), operand("b", b)});
  return scalar_at<T>(at, touched(a, b),
                      SPINDLE_SCALAR_ON_BOTH(dot(a.data(), b.data(), a.size(), result, stream)));
}

template <typename T>
T norm2(const Buffer<T>& x) {
  return scalar_at<T>(x.location(), touched(x),
                      SPINDLE_SCALAR_ON_BOTH(norm2(x.data(), x.size(), result, stream)));
}

#undef SPINDLE_ON_BOTH
#undef SPINDLE_SCALAR_ON_BOTH

#define SPINDLE_OPS(T)                                                                      \
  template void sgd<T>(Buffer<T>&, const Buffer<T>&, const Sgd&);                           \
  template void sgd<T>(Buffer<T>&, const Buffer<T>&, Buffer<T>&, const Sgd&);               \
  template void adam<T>(Buffer<T>&, const Buffer<T>&, Buffer<T>&, Buffer<T>&, const Adam&); \
  template void aggregate<T>(Buffer<T>&, std::span<const Buffer<T>* const>, Reduction);     \
  template void axpy<T>(Buffer<T>&, T, const Buffer<T>&);                                   \
  template void scale<T>(Buffer<T>&, T);                                                    \
  template void fill<T>(Buffer<T>&, T);                                                     \
  template T dot<T>(const Buffer<T>&, const Buffer<T>&);                                    \
  template T norm2<T>(const Buffer<T>&);
SPINDLE_OPS(float)
SPINDLE_OPS(double)
#undef SPINDLE_OPS

}  // namespace spindle::ops
