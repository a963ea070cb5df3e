// Dashed flag spellings (--max-new-tokens) for absl flags, whose names are identifiers
// (--max_new_tokens): the same normalization as tools/xlstm_run/main.cc, shared by
// xlstm-server, xlstm-client and xlstm-loadgen.
#ifndef XLSTM_CLIENT_FLAG_NAMES_H_
#define XLSTM_CLIENT_FLAG_NAMES_H_

#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_replace.h"

namespace xlstm::cli {

// Rewrites the name part of each argument in flag position to underscores when that names a
// known flag; values are left untouched.
inline std::vector<std::string> NormalizeFlagNames(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  bool next_is_value = false;
  for (const std::string& arg : args) {
    if (next_is_value || arg.size() <= 2 || arg.compare(0, 2, "--") != 0) {
      next_is_value = false;
      out.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string name = absl::StrReplaceAll(
        arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2), {{"-", "_"}});
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr && name.rfind("no", 0) == 0) flag = absl::FindCommandLineFlag(name.substr(2));
    if (flag == nullptr) {
      out.push_back(arg);
      continue;
    }
    out.push_back("--" + name + (eq == std::string::npos ? "" : arg.substr(eq)));
    next_is_value = eq == std::string::npos && !flag->IsOfType<bool>();
  }
  return out;
}

// Parses argv[first..] (argv[0] kept as the program name) and returns the positional
// arguments after the program name.
inline std::vector<std::string> ParseFlags(int argc, char** argv, int first) {
  std::vector<std::string> normalized =
      NormalizeFlagNames(std::vector<std::string>(argv + first, argv + argc));
  std::vector<char*> args = {argv[0]};
  for (std::string& a : normalized) args.push_back(a.data());
  std::vector<char*> positional = absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return std::vector<std::string>(positional.begin() + 1, positional.end());
}

}  // namespace xlstm::cli

#endif  // XLSTM_CLIENT_FLAG_NAMES_H_
