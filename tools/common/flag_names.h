// Dashed flag spellings for absl flags, shared by xlstm-run, xlstm-server, xlstm-client and
// xlstm-loadgen.
//
// absl flag names are C++ identifiers (--max_new_tokens), but the documented spelling is
// --max-new-tokens. NormalizeFlagNames rewrites the name part of every argument in flag position
// to underscores when that names a known flag; values (after '=' or in the next argument of a
// non-boolean flag) are left untouched, and so is everything after a "--" terminator. Boolean
// negations are accepted as --no-greedy, --no_greedy and --nogreedy (all become --nogreedy, which
// is absl's spelling). Unknown names pass through unchanged, so absl reports them by name.
//
// ParseFlags also makes --help list the program's own flags: absl's default shows only flags
// defined in <program>.cc or <program>_main.cc, which matches none of ours (xlstm-server's flags
// live in main.cc, xlstm-run's in flags.cc), so --help printed "No flags matched".
//
// Header-only: a consumer links absl::flags, absl::flags_parse, absl::flags_reflection and
// absl::strings, and has the repository root on its include path.
#ifndef XLSTM_TOOLS_COMMON_FLAG_NAMES_H_
#define XLSTM_TOOLS_COMMON_FLAG_NAMES_H_

#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"

namespace xlstm::cli {

inline std::vector<std::string> NormalizeFlagNames(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  bool next_is_value = false;
  bool after_terminator = false;
  for (const std::string& arg : args) {
    if (after_terminator || next_is_value || arg.size() <= 2 || arg.compare(0, 2, "--") != 0) {
      after_terminator = after_terminator || (!next_is_value && arg == "--");
      next_is_value = false;
      out.push_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq);
    const std::string name = absl::StrReplaceAll(
        arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2), {{"-", "_"}});
    if (const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name); flag != nullptr) {
      out.push_back("--" + name + value);
      next_is_value = eq == std::string::npos && !flag->IsOfType<bool>();
      continue;
    }
    // A negated boolean: --no-name / --no_name / --noname.
    std::string negated;
    if (name.rfind("no_", 0) == 0) {
      negated = name.substr(3);
    } else if (name.rfind("no", 0) == 0) {
      negated = name.substr(2);
    }
    const absl::CommandLineFlag* flag =
        negated.empty() ? nullptr : absl::FindCommandLineFlag(negated);
    if (flag != nullptr && flag->IsOfType<bool>()) {
      out.push_back("--no" + negated + value);  // absl rejects a value here, naming the flag
    } else {
      out.push_back(arg);  // absl reports the unknown flag
    }
  }
  return out;
}

// --help and --helpshort list every flag not defined by abseil itself.
inline void HelpListsOwnFlags() {
  absl::FlagsUsageConfig config;
  config.contains_help_flags = [](absl::string_view file) {
    return !absl::StrContains(file, "absl/");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  absl::SetFlagsUsageConfig(config);
}

// Parses argv[first..] with dashed names normalized (argv[0] is kept as the program name) and
// returns the positional arguments, without the program name. absl exits with a message naming
// the flag on an unknown flag or a bad value, and prints the flags on --help.
inline std::vector<std::string> ParseFlags(int argc, char** argv, int first) {
  HelpListsOwnFlags();
  std::vector<std::string> normalized =
      NormalizeFlagNames(std::vector<std::string>(argv + first, argv + argc));
  std::vector<char*> args = {argv[0]};
  for (std::string& a : normalized) args.push_back(a.data());
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  return std::vector<std::string>(positional.begin() + 1, positional.end());
}

}  // namespace xlstm::cli

#endif  // XLSTM_TOOLS_COMMON_FLAG_NAMES_H_
