// A Hugging Face model directory opened for reading: config.json plus the weights, either one
// `model.safetensors` or the shards listed in `model.safetensors.index.json` (HF's lookup order).
// All files are memory-mapped; nothing is copied here.
//
// Tensors are handed out by HF name through Take(), which checks the shape and remembers what
// was taken, so that CheckAllTaken() can reject files with tensors the model does not use.
//
// Thread safety: not thread-safe (Take() records state); used once, at load time.
#ifndef XLSTM_ENGINE_WEIGHTS_CHECKPOINT_H_
#define XLSTM_ENGINE_WEIGHTS_CHECKPOINT_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model_config.h"
#include "engine/weights/safetensors.h"

namespace xlstm::engine {

class Checkpoint {
 public:
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& model_dir);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }

  bool Has(const std::string& name) const { return tensors_.count(name) != 0; }
  // The tensor `name`, which must exist, have a weight dtype (F32/BF16/F16) and `shape`.
  // Errors name the file, the tensor and expected vs actual.
  absl::StatusOr<const TensorView*> Take(const std::string& name,
                                         const std::vector<int64_t>& shape);
  // Fails naming the first tensor in the files that no Take() asked for.
  absl::Status CheckAllTaken() const;
  // The file a tensor came from, for messages.
  std::string FileOf(const std::string& name) const;

 private:
  struct Entry {
    const TensorView* view;
    const SafetensorsFile* file;
  };

  Checkpoint() = default;
  absl::Status AddFile(std::unique_ptr<SafetensorsFile> file);

  std::string dir_;
  ModelConfig config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, Entry> tensors_;
  std::set<std::string> taken_;
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_WEIGHTS_CHECKPOINT_H_
