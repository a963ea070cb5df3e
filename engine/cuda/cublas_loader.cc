#include "engine/cuda/cublas_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace xlstm::engine::cuda {
namespace {

absl::StatusOr<CublasFunctions> Load() {
  const std::string name = absl::StrCat("libcublas.so.", CUBLAS_VER_MAJOR);
  std::vector<std::string> candidates = {name};
  if (const char* home = std::getenv("CUDA_HOME"); home != nullptr && *home != '\0') {
    candidates.push_back(absl::StrCat(home, "/lib64/", name));
  }
  candidates.push_back("/usr/local/cuda/lib64/" + name);
  void* library = nullptr;
  std::vector<std::string> errors;
  for (const std::string& candidate : candidates) {
    library = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library != nullptr) break;
    errors.push_back(dlerror());
  }
  if (library == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot load cuBLAS: ", absl::StrJoin(errors, "; ")));
  }
  CublasFunctions f;
  std::string missing;
  auto bind = [&](auto& slot, const char* symbol) {
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(dlsym(library, symbol));
    if (slot == nullptr) absl::StrAppend(&missing, missing.empty() ? "" : ", ", symbol);
  };
  bind(f.create, "cublasCreate_v2");
  bind(f.destroy, "cublasDestroy_v2");
  bind(f.set_stream, "cublasSetStream_v2");
  bind(f.set_workspace, "cublasSetWorkspace_v2");
  bind(f.set_math_mode, "cublasSetMathMode");
  bind(f.gemm_ex, "cublasGemmEx");
  bind(f.status_name, "cublasGetStatusName");
  bind(f.status_string, "cublasGetStatusString");
  if (!missing.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cuBLAS (", name, ") lacks the symbols ", missing));
  }
  return f;  // the library stays loaded for the life of the process
}

}  // namespace

absl::StatusOr<const CublasFunctions*> CublasApi() {
  static const absl::StatusOr<CublasFunctions>* const loaded =
      new absl::StatusOr<CublasFunctions>(Load());
  if (!loaded->ok()) return loaded->status();
  return &**loaded;
}

}  // namespace xlstm::engine::cuda
