// UTF-8 helpers: validation and cutting at character boundaries.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace engine {

// Index of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF), or npos when the whole text is valid.
size_t find_invalid_utf8(std::string_view text);

// The first `characters` code points of valid UTF-8 `text` (all of it when shorter), as Python's
// text[:characters] would cut it.
std::string_view utf8_prefix(std::string_view text, size_t characters);

}  // namespace engine
