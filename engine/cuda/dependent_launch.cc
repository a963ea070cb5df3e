#include "engine/cuda/dependent_launch.h"

#include <atomic>

namespace xlstm::engine::cuda {
namespace {
std::atomic<bool> dependent_launch{true};
}  // namespace

void SetDependentLaunch(bool enabled) { dependent_launch.store(enabled); }
bool DependentLaunchEnabled() { return dependent_launch.load(std::memory_order_relaxed); }

}  // namespace xlstm::engine::cuda
