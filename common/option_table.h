// A program's options as one table: each entry names its flag, says what it means, which field of
// the options struct it fills, its default (the struct's initializer), and its range or choices.
// The same table parses the command line (grammar and exit codes of common/command_line.h),
// checks every value, prints --help and prints the values in effect at start-up, so a new option
// is one entry and the four can never disagree.
//
//   OptionTable<Options> table("prog", "prog --model DIR [options]");
//   table.Group("Engine (engine::EngineOptions)")
//       .Integer("max_queue", &Options::max_queue, 0, 1 << 20, "waiting requests ...")
//       .Choice("backend", &Options::backend, kBackendNames, "...");
//
// Choices are enums: the table maps each spelling to its enumerator once, and code past the
// parser compares enumerators, never strings.
//
// Header-only; needs absl::status and absl::strings.
#ifndef XLSTM_COMMON_OPTION_TABLE_H_
#define XLSTM_COMMON_OPTION_TABLE_H_

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/command_line.h"

namespace xlstm::cli {

// One spelling of an enum option: {"cuda", Backend::kCuda}.
template <typename Enum>
using ChoiceName = std::pair<absl::string_view, Enum>;

// The spelling of `value` in `names` ("?" when it has none, a programming error).
template <typename Enum>
absl::string_view ChoiceSpelling(std::span<const ChoiceName<Enum>> names, Enum value) {
  for (const auto& [spelling, enumerator] : names) {
    if (enumerator == value) return spelling;
  }
  return "?";
}

template <typename Options>
class OptionTable {
 public:
  // `usage` is the synopsis printed first by --help.
  OptionTable(std::string program, std::string usage)
      : program_(std::move(program)), usage_(std::move(usage)) {}

  // Starts a group of options in --help and in the start-up printout; the title says which
  // struct (or which part of the program) the group's options configure.
  OptionTable& Group(std::string title) {
    group_ = std::move(title);
    return *this;
  }

  // A text option; `required` ones must be given.
  OptionTable& Text(absl::string_view name, std::string Options::*field, absl::string_view help,
                    absl::string_view placeholder = "TEXT", bool required = false) {
    Entry& e = Add(name, help, placeholder);
    e.required = required;
    e.is_set = [field](const Options& o) { return !(o.*field).empty(); };
    e.parse = [field](absl::string_view value, Options* o) -> absl::Status {
      o->*field = std::string(value);
      return absl::OkStatus();
    };
    e.print = [field](const Options& o) { return o.*field; };
    return *this;
  }

  // An integer option in [min, max].
  template <typename Int>
  requires std::is_integral_v<Int> OptionTable& Integer(absl::string_view name, Int Options::*field,
                                                        Int min, Int max, absl::string_view help) {
    Entry& e = Add(name, help, "N");
    e.range = absl::StrCat("range [", min, ", ", max, "]");
    e.parse = [field, min, max, flag = DashedFlag(e.name)](absl::string_view value,
                                                           Options* o) -> absl::Status {
      int64_t parsed = 0;
      if (!absl::SimpleAtoi(value, &parsed)) {
        return absl::InvalidArgumentError(absl::StrCat(flag, ": '", value, "' is not an integer"));
      }
      if (parsed < static_cast<int64_t>(min) || parsed > static_cast<int64_t>(max)) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, ": ", parsed, " is outside [", min, ", ", max, "]"));
      }
      o->*field = static_cast<Int>(parsed);
      return absl::OkStatus();
    };
    e.print = [field](const Options& o) { return absl::StrCat(o.*field); };
    return *this;
  }

  // A real-valued option in [min, max] (finite).
  OptionTable& Real(absl::string_view name, double Options::*field, double min, double max,
                    absl::string_view help, absl::string_view placeholder = "X") {
    Entry& e = Add(name, help, placeholder);
    e.range = absl::StrCat("range [", min, ", ", max, "]");
    e.parse = [field, min, max, flag = DashedFlag(e.name)](absl::string_view value,
                                                           Options* o) -> absl::Status {
      double parsed = 0;
      if (!absl::SimpleAtod(value, &parsed) || !std::isfinite(parsed)) {
        return absl::InvalidArgumentError(absl::StrCat(flag, ": '", value, "' is not a number"));
      }
      if (parsed < min || parsed > max) {
        return absl::InvalidArgumentError(
            absl::StrCat(flag, ": ", parsed, " is outside [", min, ", ", max, "]"));
      }
      o->*field = parsed;
      return absl::OkStatus();
    };
    e.print = [field](const Options& o) { return absl::StrCat(o.*field); };
    return *this;
  }

  // An enum option spelled as one of `all_names` (static: it must outlive the table).
  template <typename Enum, size_t kCount>
  OptionTable& Choice(absl::string_view name, Enum Options::*field,
                      const std::array<ChoiceName<Enum>, kCount>& all_names,
                      absl::string_view help) {
    const std::span<const ChoiceName<Enum>> names(all_names);
    std::vector<absl::string_view> spellings;
    for (const auto& choice : names) spellings.push_back(choice.first);
    Entry& e = Add(name, help, absl::StrJoin(spellings, "|"));
    e.parse = [field, names, spellings, flag = DashedFlag(e.name)](absl::string_view value,
                                                                   Options* o) -> absl::Status {
      for (const auto& [spelling, enumerator] : names) {
        if (spelling == value) {
          o->*field = enumerator;
          return absl::OkStatus();
        }
      }
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": '", value, "' is not one of ", absl::StrJoin(spellings, ", ")));
    };
    e.print = [field, names](const Options& o) {
      return std::string(ChoiceSpelling(names, o.*field));
    };
    return *this;
  }

  // A check across options, run after parsing (e.g. a default below its limit); its error must
  // name the flags involved.
  OptionTable& Check(std::function<absl::Status(const Options&)> check) {
    checks_.push_back(std::move(check));
    return *this;
  }

  struct Parsed {
    bool help = false;                    // --help was given: print Help(), exit 0
    std::vector<std::string> positional;  // arguments that are not options
  };

  // Parses `args` (after the program name) over `options`, whose values on entry are the
  // defaults. A usage mistake is an InvalidArgument error that names the flag.
  absl::StatusOr<Parsed> Parse(const std::vector<std::string>& args, Options* options) const {
    Parsed parsed;
    auto kind_of = [this](const std::string& name) {
      return Find(name) == nullptr ? FlagKind::kUnknown : FlagKind::kTakesValue;
    };
    auto set = [this, options](const std::string& name, absl::string_view value) {
      return Find(name)->parse(value, options);
    };
    absl::StatusOr<bool> help = ScanArguments(args, kind_of, set, &parsed.positional);
    if (!help.ok()) return help.status();
    parsed.help = *help;
    if (parsed.help) return parsed;
    for (const Entry& e : entries_) {
      if (e.required && !e.is_set(*options)) {
        return absl::InvalidArgumentError(absl::StrCat(DashedFlag(e.name), ": is required"));
      }
    }
    for (const auto& check : checks_) {
      if (absl::Status s = check(*options); !s.ok()) return s;
    }
    return parsed;
  }

  // Parses argv, or exits: 0 after printing --help, 2 with a message naming the flag on a usage
  // mistake (including any positional argument).
  Options ParseOrExit(int argc, char** argv, Options options = {}) const {
    const std::vector<std::string> args(argv + 1, argv + argc);
    absl::StatusOr<Parsed> parsed = Parse(args, &options);
    if (!parsed.ok()) ExitWithUsageError(program_, parsed.status().message());
    if (parsed->help) {
      std::fputs(Help().c_str(), stdout);
      std::fflush(stdout);
      std::exit(0);
    }
    if (!parsed->positional.empty()) {
      ExitWithUsageError(program_,
                         absl::StrCat("unexpected argument '", parsed->positional[0], "'"));
    }
    return options;
  }

  // --help: the usage line, then every option by group with its help, default and range.
  std::string Help() const {
    const Options defaults{};
    std::string out = absl::StrCat("usage: ", usage_, "\n");
    std::string group;
    for (const Entry& e : entries_) {
      if (e.group != group || &e == &entries_.front()) {
        group = e.group;
        absl::StrAppend(&out, "\n", group, ":\n");
      }
      std::string details;
      if (e.required) {
        details = "required";
      } else {
        const std::string value = e.print(defaults);
        details = absl::StrCat("default: ", value.empty() ? "none" : value);
      }
      if (!e.range.empty()) absl::StrAppend(&details, "; ", e.range);
      out += FormatHelpEntry(absl::StrCat(DashedFlag(e.name), " ", e.placeholder), e.help, details);
    }
    return out;
  }

  // The values in effect as (dashed name without "--", value), in table order.
  std::vector<std::pair<std::string, std::string>> Values(const Options& options) const {
    std::vector<std::pair<std::string, std::string>> values;
    for (const Entry& e : entries_)
      values.emplace_back(DashedFlag(e.name).substr(2), e.print(options));
    return values;
  }

  // The values in effect, one "  name  value" line per option by group, for the start-up log.
  std::string Describe(const Options& options) const {
    size_t width = 0;
    for (const Entry& e : entries_) width = std::max(width, e.name.size());
    std::string out;
    std::string group;
    for (const Entry& e : entries_) {
      if (e.group != group || &e == &entries_.front()) {
        group = e.group;
        absl::StrAppend(&out, "  ", group, ":\n");
      }
      std::string name = DashedFlag(e.name).substr(2);
      name.resize(width, ' ');
      absl::StrAppend(&out, "    ", name, "  ", e.print(options), "\n");
    }
    return out;
  }

  const std::string& program() const { return program_; }

 private:
  struct Entry {
    std::string name;  // canonical (underscores)
    std::string group;
    std::string help;
    std::string placeholder;
    std::string range;  // "range [a, b]", or empty
    bool required = false;
    std::function<bool(const Options&)> is_set;
    std::function<absl::Status(absl::string_view, Options*)> parse;
    std::function<std::string(const Options&)> print;
  };

  Entry& Add(absl::string_view name, absl::string_view help, absl::string_view placeholder) {
    Entry& e = entries_.emplace_back();
    e.name = CanonicalFlagName(name);
    e.group = group_;
    e.help = std::string(help);
    e.placeholder = std::string(placeholder);
    return e;
  }

  const Entry* Find(const std::string& canonical_name) const {
    for (const Entry& e : entries_) {
      if (e.name == canonical_name) return &e;
    }
    return nullptr;
  }

  std::string program_;
  std::string usage_;
  std::string group_;
  std::vector<Entry> entries_;
  std::vector<std::function<absl::Status(const Options&)>> checks_;
};

}  // namespace xlstm::cli

#endif  // XLSTM_COMMON_OPTION_TABLE_H_
