// Command-line parsing for the programs whose flags are absl flags (xlstm-client, xlstm-loadgen,
// xlstm-run), with the grammar of common/command_line.h: dashed names, --no-flag booleans,
// every usage mistake exits 2 with a message naming the flag, and --help prints the program's
// usage and its own flags (never abseil's, never a source path) and exits 0.
//
// absl::ParseCommandLine is not used: it exits 1 on a bad value, lists flags under the build
// machine's source paths, and its --help exits 1.
//
// Header-only: a consumer links the xlstm_flag_names target (absl flags, reflection, usage).
#ifndef XLSTM_COMMON_FLAG_NAMES_H_
#define XLSTM_COMMON_FLAG_NAMES_H_

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/command_line.h"

namespace xlstm::cli {

struct ParseFlagsOptions {
  // Flags that may be given several times, each value taken literally (a comma stays a comma),
  // by canonical name: their values are appended to the vector instead of setting the absl flag,
  // which is declared only so that the name is known and listed in --help.
  std::map<std::string, std::vector<std::string>*> repeatable;
};

// True for flags this program defines, false for abseil's own (--flagfile, --fromenv, ...).
inline bool IsOwnFlag(const absl::CommandLineFlag& flag) {
  return !absl::StrContains(flag.Filename(), "absl/");
}

// The program's flags for --help, sorted by name: dashed name, help, default.
inline std::string FlagsHelp(const ParseFlagsOptions& options = {}) {
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (IsOwnFlag(*flag)) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  std::string out;
  for (const absl::CommandLineFlag* flag : flags) {
    const std::string name(flag->Name());
    std::string details;
    if (flag->IsOfType<bool>()) {
      details = absl::StrCat("default: ", flag->DefaultValue(), "; ", DashedFlag("no_" + name),
                             " sets false");
      out += FormatHelpEntry(DashedFlag(name), flag->Help(), details);
      continue;
    }
    if (options.repeatable.count(name) > 0) {
      details = "repeatable";
    } else if (!flag->DefaultValue().empty()) {
      details = absl::StrCat("default: ", flag->DefaultValue());
    }
    out += FormatHelpEntry(absl::StrCat(DashedFlag(name), " VALUE"), flag->Help(), details);
  }
  return out;
}

// Parses argv[first..] into the absl flags and returns the positional arguments. argv[0] names
// the program in messages; `first` > 1 skips a command name (xlstm-run generate ...). Exits 0
// after printing help on --help, and 2 with a message naming the flag on any usage mistake.
inline std::vector<std::string> ParseFlags(int argc, char** argv, int first,
                                           const ParseFlagsOptions& options = {}) {
  std::string program = ProgramName(argv[0]);
  for (int i = 1; i < first && i < argc; ++i) absl::StrAppend(&program, " ", argv[i]);
  const std::vector<std::string> args(argv + std::min(first, argc), argv + argc);

  auto kind_of = [&](const std::string& name) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr || !IsOwnFlag(*flag)) return FlagKind::kUnknown;
    return flag->IsOfType<bool>() ? FlagKind::kBoolean : FlagKind::kTakesValue;
  };
  auto set = [&](const std::string& name, absl::string_view value) -> absl::Status {
    if (auto it = options.repeatable.find(name); it != options.repeatable.end()) {
      it->second->emplace_back(value);
      return absl::OkStatus();
    }
    std::string error;
    if (absl::FindCommandLineFlag(name)->ParseFrom(value, &error)) return absl::OkStatus();
    // absl's message repeats the value and the underscore name; keep only its detail, if any.
    const size_t detail = error.find("'; ");
    return absl::InvalidArgumentError(
        absl::StrCat(DashedFlag(name), ": '", value, "' is not a valid value",
                     detail == std::string::npos ? "" : ": ",
                     detail == std::string::npos ? "" : error.substr(detail + 3)));
  };
  std::vector<std::string> positional;
  const absl::StatusOr<bool> help = ScanArguments(args, kind_of, set, &positional);
  if (!help.ok()) ExitWithUsageError(program, help.status().message());
  if (*help) {
    std::printf("usage: %s\n\nflags:\n%s", std::string(absl::ProgramUsageMessage()).c_str(),
                FlagsHelp(options).c_str());
    std::fflush(stdout);
    std::exit(0);
  }
  return positional;
}

}  // namespace xlstm::cli

#endif  // XLSTM_COMMON_FLAG_NAMES_H_
