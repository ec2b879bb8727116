// The word-embedding table kept compressed: every bundle traces its lookup as
// `table[ids].type_as(row_scale) * row_scale[ids]` (models/common/bundle.py, RowScaledEmbedding),
// so the table can be int8 with one scale per row, or bf16 in an fp32 model, and only the rows a
// batch looks up are dequantised. A table the exporter stored apart from the model file
// (`tools/export.py --embedding-dtype`) is mapped into memory read-only: only the pages of rows
// actually looked up become resident, which for a 250k-row multilingual vocabulary is a small
// fraction of the table.
#pragma once

#include <utility>

#include <ATen/core/Tensor.h>

#include "engine/runtime/manifest.h"
#include "engine/runtime/model.h"

namespace engine {

// Puts the table in the form `options` and the bundle ask for: maps a stored table (refusing an
// embedding_dtype other than the stored one), or quantises the loaded table to int8 when
// options.embedding_dtype is int8 (kChar). Throws ConfigError naming the file or key at fault.
void prepare_embedding_table(Model& model, const Manifest& manifest,
                             const ModelLoadOptions& options);

// Symmetric int8 with one scale per row, scale = max|row| / 127, in blocks of rows so no fp32 copy
// of the whole table is made. Returns (int8 [rows, cols], float32 [rows, 1]).
std::pair<at::Tensor, at::Tensor> quantize_rows_int8(const at::Tensor& table);

// The stored table file mapped read-only as a [rows, cols] CPU tensor (unmapped when the last
// reference goes). Checks its size, and its SHA-256 when `verify_checksum`.
at::Tensor map_embedding_table(const Manifest& manifest, bool verify_checksum);

}  // namespace engine
