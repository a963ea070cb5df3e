// Status plumbing that Abseil 20220623 (Debian 12) does not ship: early-return macros for
// absl::Status / absl::StatusOr, and a CHECK for programmer errors.
//
// Errors that come from outside the process (files, requests, devices) travel as absl::Status.
// XLSTM_CHECK is only for broken internal invariants; it never guards request data.
#ifndef XLSTM_COMMON_STATUS_MACROS_H_
#define XLSTM_COMMON_STATUS_MACROS_H_

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define XLSTM_STATUS_CONCAT_INNER_(a, b) a##b
#define XLSTM_STATUS_CONCAT_(a, b) XLSTM_STATUS_CONCAT_INNER_(a, b)

// Returns `expr`'s status from the enclosing function when it is not OK.
#define XLSTM_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status xlstm_status_ = (expr);         \
    if (!xlstm_status_.ok()) return xlstm_status_; \
  } while (false)

// `XLSTM_ASSIGN_OR_RETURN(auto x, MakeX());` declares/assigns `x` from a StatusOr, or returns its
// error from the enclosing function.
#define XLSTM_ASSIGN_OR_RETURN(lhs, expr) \
  XLSTM_ASSIGN_OR_RETURN_IMPL_(XLSTM_STATUS_CONCAT_(xlstm_statusor_, __LINE__), lhs, expr)
#define XLSTM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)  \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

// Aborts with the failed condition's text. For invariants of our own code only.
#define XLSTM_CHECK(cond)                                                                 \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: XLSTM_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (false)

#endif  // XLSTM_COMMON_STATUS_MACROS_H_
