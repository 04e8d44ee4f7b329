// A gate that tasks wait on (suspending only their fiber) until a test opens it.
#pragma once

#include <boost/fiber/future.hpp>

namespace spindle::testing {

class Gate {
 public:
  void open() { promise_.set_value(); }
  void wait() const { future_.wait(); }

 private:
  boost::fibers::promise<void> promise_;
  boost::fibers::shared_future<void> future_ = promise_.get_future().share();
};

}  // namespace spindle::testing
