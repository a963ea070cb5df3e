// Which logits a sequence wants from a forward pass. Part of the backend seam (backend.h) and
// of the CPU reference model, which both speak it; it lives apart so that the seam does not
// depend on the CPU implementation.
#ifndef XLSTM_ENGINE_LOGITS_MODE_H_
#define XLSTM_ENGINE_LOGITS_MODE_H_

namespace xlstm::engine {

enum class LogitsMode {
  kNone,  // only advance the state (a prefill chunk that is not the prompt's last)
  kLast,  // the last position's logits
  kAll,   // logits for every position (scoring, parity tests)
};

}  // namespace xlstm::engine

#endif  // XLSTM_ENGINE_LOGITS_MODE_H_
