#include "engine/weights/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/untrusted_file.h"
#include "nlohmann/json.hpp"

namespace xlstm::engine {
namespace {

using Json = nlohmann::json;

// Headers are small JSON documents (the 7B's is ~30 KB); refuse absurd lengths before reading.
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

absl::Status FileError(const std::string& path, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", message));
}

absl::Status TensorError(const std::string& path, const std::string& tensor,
                         absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", tensor, "': ", message));
}

// Parses and checks one header entry; on success fills `view` (data pointer relative to 0).
absl::Status ParseEntry(const std::string& path, const std::string& name, const Json& entry,
                        uint64_t data_size, TensorView* view, uint64_t* begin_out) {
  if (!entry.is_object()) return TensorError(path, name, "header entry is not an object");
  auto dtype_it = entry.find("dtype");
  auto shape_it = entry.find("shape");
  auto offsets_it = entry.find("data_offsets");
  if (dtype_it == entry.end() || !dtype_it->is_string()) {
    return TensorError(path, name, "missing or non-string 'dtype'");
  }
  std::optional<DType> dtype = ParseDType(dtype_it->get<std::string>());
  if (!dtype) {
    return TensorError(path, name,
                       absl::StrCat("unknown dtype '", dtype_it->get<std::string>(), "'"));
  }
  if (shape_it == entry.end() || !shape_it->is_array()) {
    return TensorError(path, name, "missing or non-array 'shape'");
  }
  std::vector<int64_t> shape;
  uint64_t elements = 1;
  for (const Json& dim : *shape_it) {
    if (!dim.is_number_unsigned() && !(dim.is_number_integer() && dim.get<int64_t>() >= 0)) {
      return TensorError(
          path, name, absl::StrCat("shape entry ", dim.dump(), " is not a non-negative integer"));
    }
    const uint64_t d = dim.get<uint64_t>();
    if (d != 0 && elements > (uint64_t{1} << 62) / d) {
      return TensorError(path, name, "shape has too many elements");
    }
    elements *= d;
    shape.push_back(static_cast<int64_t>(d));
  }
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
    return TensorError(path, name, "'data_offsets' must be two non-negative integers [begin, end]");
  }
  const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
  const uint64_t end = (*offsets_it)[1].get<uint64_t>();
  if (begin > end) {
    return TensorError(path, name,
                       absl::StrCat("data_offsets [", begin, ", ", end, "] are reversed"));
  }
  if (end > data_size) {
    return TensorError(
        path, name,
        absl::StrCat("data_offsets end ", end, " is past the data section (", data_size,
                     " bytes); the file is truncated or the header is wrong"));
  }
  const uint64_t expected_bytes = elements * DTypeSize(*dtype);
  if (end - begin != expected_bytes) {
    return TensorError(
        path, name,
        absl::StrCat("data_offsets cover ", end - begin, " bytes but ", DTypeName(*dtype), " ",
                     ShapeToString(shape), " needs ", expected_bytes));
  }
  view->name = name;
  view->dtype = *dtype;
  view->shape = std::move(shape);
  view->num_bytes = static_cast<size_t>(expected_bytes);
  *begin_out = begin;
  return absl::OkStatus();
}

}  // namespace

int64_t TensorView::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string ShapeToString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  // Never a blocking open: a FIFO in place of the file must be refused, not waited on.
  uint64_t file_size = 0;
  absl::StatusOr<int> opened = files::OpenRegularFile(path, &file_size);
  if (!opened.ok()) return opened.status();
  const int fd = *opened;
  if (file_size < 8) {
    ::close(fd);
    return FileError(path, absl::StrCat("file is ", file_size,
                                        " bytes, too short for the 8-byte header length"));
  }
  void* mapping = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED) {
    return FileError(path, absl::StrCat("mmap failed: ", std::strerror(errno)));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->mapping_ = mapping;
  file->mapping_size_ = file_size;
  const auto* bytes = static_cast<const std::byte*>(mapping);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(bytes[i]);
  if (header_len > kMaxHeaderBytes || header_len > file_size - 8) {
    return FileError(path, absl::StrCat("header length ", header_len, " exceeds the file (",
                                        file_size, " bytes) or the ", kMaxHeaderBytes,
                                        "-byte limit; the file is truncated or not safetensors"));
  }
  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  Json header;
  try {
    header = Json::parse(header_begin, header_begin + header_len);
  } catch (const Json::exception& e) {
    // parse_error, and out_of_range for numbers that overflow a double (1e999).
    return FileError(path, absl::StrCat("header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) return FileError(path, "header is not a JSON object");

  const uint64_t data_offset = 8 + header_len;
  const uint64_t data_size = file_size - data_offset;
  std::vector<std::pair<uint64_t, const TensorView*>> extents;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    TensorView view{};
    uint64_t begin = 0;
    if (absl::Status s = ParseEntry(path, it.key(), it.value(), data_size, &view, &begin);
        !s.ok()) {
      return s;
    }
    view.data = bytes + data_offset + begin;
    auto [pos, inserted] = file->tensors_.emplace(it.key(), std::move(view));
    extents.emplace_back(begin, &pos->second);
  }
  // Tensors may not share bytes: a header that overlaps them is corrupt.
  std::sort(extents.begin(), extents.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < extents.size(); ++i) {
    const auto& [prev_begin, prev] = extents[i - 1];
    if (prev->num_bytes > 0 && prev_begin + prev->num_bytes > extents[i].first) {
      return TensorError(path, extents[i].second->name,
                         absl::StrCat("data overlaps tensor '", prev->name, "'"));
    }
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

}  // namespace xlstm::engine
