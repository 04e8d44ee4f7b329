// parallel_for: see parallel.hpp.
#include "context/parallel.hpp"

#include <algorithm>
#include <vector>

#include "runtime/scheduler.hpp"

namespace spindle::detail {
namespace {

struct Piece {
  const std::function<void(std::size_t, std::size_t)>* body;
  std::size_t begin, end;
  void operator()() const { (*body)(begin, end); }
};

}  // namespace

void parallel_for(std::size_t n, std::size_t grain,
                  const std::function<void(std::size_t, std::size_t)>& body) {
  grain = std::max<std::size_t>(grain, 1);
  TaskRecord* parent = current_task();
  std::size_t grains = (n + grain - 1) / grain;
  std::size_t pieces = parent ? std::min<std::size_t>(parent->scheduler().workers(), grains) : 1;
  if (pieces <= 1) {
    if (n > 0) body(0, n);
    return;
  }
  Scheduler& scheduler = parent->scheduler();
  auto spec = std::make_shared<TaskSpec>();
  spec->name = "parallel_for piece";
  spec->request = scheduler.request_for(ResourceSet());
  auto bound = [&](std::size_t piece) { return std::min(n, (grains * piece / pieces) * grain); };
  // The results are held here: a finished piece's record lets go of its own.
  std::vector<std::shared_ptr<ObjectState<void>>> held;
  std::vector<ObjectStateBase*> results;
  for (std::size_t piece = 1; piece < pieces; ++piece) {
    auto [task, piece_body] =
        make_task<TypedTask<Piece>>(scheduler, spec, Piece{&body, bound(piece), bound(piece + 1)});
    held.push_back(piece_body->result_state());
    results.push_back(held.back().get());
    scheduler.submit(std::move(task));
  }
  std::exception_ptr first_error;
  try {
    body(0, bound(1));
  } catch (...) {
    first_error = std::current_exception();
  }
  block_until_all_done(results, std::nullopt);  // `body` must outlive every piece
  if (first_error) std::rethrow_exception(first_error);
  for (ObjectStateBase* result : results) result->rethrow_if_failed();
}

}  // namespace spindle::detail
