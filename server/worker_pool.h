// Small fixed thread pools for the server's work that must run neither on gRPC callback threads
// nor on the engine thread.
//
// Why: gRPC's callback API runs reactions on a few threads shared by every call on the server
// (they also poll the network), so a reaction that tokenizes megabytes of text stalls unrelated
// calls; and the engine thread must hand results over without building or writing protos. The
// service keeps two pools: a bounded one for text work (tokenizing and validating requests,
// decoding ids) that refuses at once when full, and one that turns engine output into messages
// and starts writes (its queue is bounded by the number of live calls, since each call has at
// most one delivery task queued).
//
// Threading: Submit and TrySubmit may be called from any thread, the engine thread included: they
// only hold the pool's mutex to queue the task and wake a worker. Tasks run on the pool's threads,
// in FIFO order, concurrently up to the thread count. A task must not wait for another task of the
// same pool.
//
// Shutdown: the destructor runs every task already queued, then joins the threads; destroy a pool
// only when nothing submits to it any more (after the gRPC server has shut down).
#ifndef XLSTM_SERVER_WORKER_POOL_H_
#define XLSTM_SERVER_WORKER_POOL_H_

#include <cstddef>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace xlstm::server {

class WorkerPool {
 public:
  using Task = absl::AnyInvocable<void()>;

  // `name` names the threads (shown by top -H, gdb). `max_queue` bounds the tasks waiting for a
  // thread (running ones not counted); 0 means unbounded.
  WorkerPool(std::string name, int threads, size_t max_queue);
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`, or returns false (and drops it) when `max_queue` tasks are already waiting.
  bool TrySubmit(Task task);
  // Queues `task` regardless of `max_queue`: for callers whose number of queued tasks is bounded
  // by construction.
  void Submit(Task task);

  // Tasks waiting for a thread.
  size_t queued() const;
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  void Work();

  const size_t max_queue_;
  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace xlstm::server

#endif  // XLSTM_SERVER_WORKER_POOL_H_
