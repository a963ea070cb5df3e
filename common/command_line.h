// The command-line grammar shared by every xlstm program (xlstm-server's option table and the absl
// flags of xlstm-client, xlstm-loadgen and xlstm-run), so that all four read arguments, report
// mistakes and print --help the same way:
//
//   --name=value, --name value      dashes and underscores in names are the same (--max-new-tokens
//                                   is --max_new_tokens)
//   --flag, --no-flag, --flag=false booleans (also --noflag and --no_flag)
//   --                              everything after it is positional
//   -h, --help                      usage and every option with its default; exit 0
//
// Every usage mistake (unknown flag, missing or unparsable value, value out of range, bad choice)
// is one message naming the flag and exit status 2, the POSIX convention for usage errors that
// shells and CI scripts rely on to tell "called wrongly" from "failed".
//
// Header-only; needs absl::status and absl::strings.
#ifndef XLSTM_COMMON_COMMAND_LINE_H_
#define XLSTM_COMMON_COMMAND_LINE_H_

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace xlstm::cli {

inline constexpr int kUsageErrorExitCode = 2;

// "max-new-tokens" and "max_new_tokens" are one name; flags are looked up by the underscore form.
inline std::string CanonicalFlagName(absl::string_view name) {
  return absl::StrReplaceAll(name, {{"-", "_"}});
}

// The documented spelling: "--max-new-tokens".
inline std::string DashedFlag(absl::string_view canonical_name) {
  return absl::StrCat("--", absl::StrReplaceAll(canonical_name, {{"_", "-"}}));
}

inline bool IsHelpArgument(absl::string_view arg) {
  return arg == "-h" || arg == "--help" || arg == "-help" || arg == "--helpfull" ||
         arg == "--helpshort";
}

// What a parser knows about one flag when it scans the arguments.
enum class FlagKind {
  kUnknown,
  kBoolean,     // takes no separate value; --no-name sets false
  kTakesValue,  // --name value or --name=value
};

// Walks `args` (the arguments after the program or command name). `kind_of` looks a flag up by its
// canonical name; `set` receives each flag occurrence (canonical name, value; booleans get "true"
// or "false" unless written --name=value) and returns an error naming the flag for a bad value.
// Positional arguments are appended to `positional`. Returns true when help was asked for (then
// the scan stops there), or a usage error that names the flag.
inline absl::StatusOr<bool> ScanArguments(
    const std::vector<std::string>& args,
    const std::function<FlagKind(const std::string& canonical_name)>& kind_of,
    const std::function<absl::Status(const std::string& canonical_name, absl::string_view value)>&
        set,
    std::vector<std::string>* positional) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      positional->insert(positional->end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                         args.end());
      break;
    }
    if (IsHelpArgument(arg)) return true;
    if (arg.size() < 2 || arg[0] != '-') {
      positional->push_back(arg);
      continue;
    }
    const size_t name_start = arg[1] == '-' ? 2 : 1;
    const size_t eq = arg.find('=');
    const std::string written = arg.substr(0, eq);
    const std::string name = CanonicalFlagName(
        arg.substr(name_start, eq == std::string::npos ? std::string::npos : eq - name_start));
    std::optional<std::string> inline_value;
    if (eq != std::string::npos) inline_value = arg.substr(eq + 1);

    switch (kind_of(name)) {
      case FlagKind::kTakesValue: {
        if (!inline_value.has_value()) {
          if (i + 1 >= args.size()) {
            return absl::InvalidArgumentError(absl::StrCat(DashedFlag(name), ": missing value"));
          }
          inline_value = args[++i];
        }
        if (absl::Status s = set(name, *inline_value); !s.ok()) return s;
        continue;
      }
      case FlagKind::kBoolean:
        if (absl::Status s = set(name, inline_value.value_or("true")); !s.ok()) return s;
        continue;
      case FlagKind::kUnknown:
        break;
    }
    // A negated boolean: --no-name, --no_name or --noname.
    std::string negated;
    if (name.rfind("no_", 0) == 0) {
      negated = name.substr(3);
    } else if (name.rfind("no", 0) == 0) {
      negated = name.substr(2);
    }
    if (!negated.empty() && kind_of(negated) == FlagKind::kBoolean) {
      if (inline_value.has_value()) {
        return absl::InvalidArgumentError(
            absl::StrCat(written, ": a negated flag takes no value (write ", DashedFlag(negated),
                         "=", *inline_value, ")"));
      }
      if (absl::Status s = set(negated, "false"); !s.ok()) return s;
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(written, ": unknown flag"));
  }
  return false;
}

// One option in --help: the flag with a value placeholder, then the help text and the details
// (default, range, choices) indented below it.
inline std::string FormatHelpEntry(absl::string_view flag_and_value, absl::string_view help,
                                   absl::string_view details) {
  std::string out = absl::StrCat("  ", flag_and_value, "\n");
  for (absl::string_view line : absl::StrSplit(help, '\n'))
    absl::StrAppend(&out, "      ", line, "\n");
  if (!details.empty()) absl::StrAppend(&out, "      (", details, ")\n");
  return out;
}

// Prints "<program>: <message>" and a pointer to --help on stderr, and exits with status 2.
[[noreturn]] inline void ExitWithUsageError(absl::string_view program, absl::string_view message) {
  std::fprintf(stderr, "%.*s: %.*s\nRun '%.*s --help' for the flags.\n",
               static_cast<int>(program.size()), program.data(), static_cast<int>(message.size()),
               message.data(), static_cast<int>(program.size()), program.data());
  std::exit(kUsageErrorExitCode);
}

// The program's file name without its directory, for messages ("xlstm-client").
inline std::string ProgramName(const char* argv0) {
  absl::string_view name = argv0 == nullptr ? "" : argv0;
  if (const size_t slash = name.rfind('/'); slash != absl::string_view::npos) {
    name = name.substr(slash + 1);
  }
  return std::string(name);
}

}  // namespace xlstm::cli

#endif  // XLSTM_COMMON_COMMAND_LINE_H_
