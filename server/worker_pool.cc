#include "server/worker_pool.h"

#include <pthread.h>

#include <utility>

namespace xlstm::server {

WorkerPool::WorkerPool(std::string name, int threads, size_t max_queue) : max_queue_(max_queue) {
  if (threads < 1) threads = 1;
  threads_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Work(); });
    // Linux limits thread names to 15 characters.
    const std::string thread_name = (name + "-" + std::to_string(i)).substr(0, 15);
    pthread_setname_np(threads_.back().native_handle(), thread_name.c_str());
  }
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  for (std::thread& t : threads_) t.join();
}

bool WorkerPool::TrySubmit(Task task) {
  {
    absl::MutexLock lock(&mu_);
    if (max_queue_ > 0 && queue_.size() >= max_queue_) return false;
    queue_.push_back(std::move(task));
  }
  wake_.Signal();
  return true;
}

void WorkerPool::Submit(Task task) {
  {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(task));
  }
  wake_.Signal();
}

size_t WorkerPool::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void WorkerPool::Work() {
  while (true) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) wake_.Wait(&mu_);
      // Queued tasks still run when stopping: each may be the only way its call ever finishes.
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    std::move(task)();
  }
}

}  // namespace xlstm::server
