#include "engine/runtime/embedding_table.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cerrno>
#include <cstring>

#include "engine/common/error.h"
#include "engine/common/sha256.h"
#include "engine/runtime/model_bundle.h"

namespace engine {
namespace {

at::Tensor* find_tensor(std::vector<std::pair<std::string, at::Tensor>>& tensors,
                        const std::string& name) {
  for (auto& [tensor_name, tensor] : tensors) {
    if (tensor_name == name) return &tensor;
  }
  return nullptr;
}

c10::ScalarType stored_dtype(const Manifest::EmbeddingTable& table) {
  return table.dtype == "int8" ? c10::kChar : c10::kBFloat16;
}

}  // namespace

std::pair<at::Tensor, at::Tensor> quantize_rows_int8(const at::Tensor& table) {
  c10::InferenceMode inference;
  const int64_t rows = table.size(0);
  at::Tensor quantized = at::empty({rows, table.size(1)}, table.options().dtype(c10::kChar));
  at::Tensor scales = at::empty({rows, 1}, table.options().dtype(c10::kFloat));
  constexpr int64_t kBlock = 4096;
  for (int64_t start = 0; start < rows; start += kBlock) {
    const int64_t end = std::min(rows, start + kBlock);
    const at::Tensor block = table.slice(0, start, end).to(c10::kFloat);
    const at::Tensor scale = block.abs().amax(1, true).clamp_min(1e-12) / 127.0;
    scales.slice(0, start, end).copy_(scale);
    quantized.slice(0, start, end).copy_(at::round(block / scale).clamp_(-127, 127));
  }
  return {quantized, scales};
}

at::Tensor map_embedding_table(const Manifest& manifest, bool verify_checksum) {
  const Manifest::EmbeddingTable& table = manifest.embedding_table;
  const std::string path = manifest.embedding_table_path();
  const c10::ScalarType dtype = stored_dtype(table);
  const int64_t bytes = table.rows * table.cols * static_cast<int64_t>(c10::elementSize(dtype));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  check<ConfigError>(fd >= 0, "embedding table '{}' cannot be opened: {}; re-export the bundle",
                     path, std::strerror(errno));
  struct stat status {};
  ::fstat(fd, &status);
  if (status.st_size != bytes) {
    ::close(fd);
    throw ConfigError(fmt::format("embedding table '{}' holds {} bytes; engine.json says {} x {} "
                                  "{} ({} bytes). Re-export the bundle",
                                  path, status.st_size, table.rows, table.cols, table.dtype,
                                  bytes));
  }
  if (verify_checksum) {
    const std::string actual = file_sha256(path);
    if (actual != table.sha256) {
      ::close(fd);
      throw ConfigError(fmt::format("embedding table '{}' is corrupt or was replaced: its SHA-256 "
                                    "is {} but engine.json says {}; re-export the bundle",
                                    path, actual, table.sha256));
    }
  }
  void* data = ::mmap(nullptr, static_cast<size_t>(bytes), PROT_READ, MAP_PRIVATE, fd, 0);
  const int mmap_errno = errno;
  ::close(fd);
  check<ConfigError>(data != MAP_FAILED, "embedding table '{}' cannot be mapped: {}", path,
                     std::strerror(mmap_errno));
  // Rows are looked up at random: no read-ahead, no mapping of neighbouring pages.
  ::madvise(data, static_cast<size_t>(bytes), MADV_RANDOM);
  return at::from_blob(
      data, {table.rows, table.cols},
      [bytes](void* pointer) { ::munmap(pointer, static_cast<size_t>(bytes)); },
      at::TensorOptions().dtype(dtype));
}

void prepare_embedding_table(Model& model, const Manifest& manifest,
                             const ModelLoadOptions& options) {
  const bool stored_apart = !manifest.embedding_table.file.empty();
  const bool quantize = options.embedding_dtype == c10::kChar;
  if (!stored_apart && !quantize) return;
  auto tensors = model.named_tensors();
  at::Tensor* table = find_tensor(tensors, manifest.embedding_parameter);
  check<ConfigError>(table != nullptr, "{}/engine.json: embedding_parameter '{}' is not a parameter "
                     "of {}", manifest.directory, manifest.embedding_parameter,
                     manifest.model_path());
  table->requires_grad_(false);  // an int8 tensor cannot require gradients
  c10::InferenceMode inference;
  if (stored_apart) {
    const c10::ScalarType stored = stored_dtype(manifest.embedding_table);
    check<ConfigError>(!options.embedding_dtype || *options.embedding_dtype == stored,
                       "model.embedding_dtype asks for {} but the bundle's embedding table is "
                       "stored in {} ({}); use model.embedding_dtype: same, or re-export",
                       dtype_name(*options.embedding_dtype), manifest.embedding_table.dtype,
                       manifest.embedding_table_path());
    at::Tensor mapped = map_embedding_table(manifest, options.verify_checksum);
    table->set_data(options.device.is_cpu() ? mapped : mapped.to(options.device));
    return;
  }
  at::Tensor* scale = manifest.embedding_scale.empty()
                          ? nullptr
                          : find_tensor(tensors, manifest.embedding_scale);
  check<ConfigError>(scale != nullptr,
                     "model.embedding_dtype int8 needs the table's row scale, which {} does not "
                     "have; re-export the bundle with this version's tools/export.py",
                     manifest.model_path());
  auto [quantized, scales] = quantize_rows_int8(*table);
  table->set_data(quantized);
  // float32, as kept_dtype() keeps every row scale, unless the graph was traced in a lower
  // precision: the looked-up rows take the scale's dtype.
  scale->set_data(scales.to(scale->scalar_type()));
}

}  // namespace engine
