// spindle: Ray Core's programming model for native code, on real hardware.
//
// The one header users include.
#pragma once

#include "spindle/actor.hpp"
#include "spindle/buffer.hpp"
#include "spindle/device.hpp"
#include "spindle/errors.hpp"
#include "spindle/kernels.hpp"
#include "spindle/object_ref.hpp"
#include "spindle/ops.hpp"
#include "spindle/param.hpp"
#include "spindle/perf_model.hpp"
#include "spindle/placement.hpp"
#include "spindle/resources.hpp"
#include "spindle/runtime.hpp"
#include "spindle/task.hpp"
#include "spindle/topology.hpp"
