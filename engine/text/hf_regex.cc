#include "engine/text/hf_regex.h"

#include <fmt/format.h>
#include <oniguruma.h>

#include <cctype>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "engine/text/hf_unicode.h"
#include "engine/text/hf_unicode_tables.h"

namespace engine::hf {
namespace {

void initialize_oniguruma() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}

std::string onig_message(int code, OnigErrorInfo* info) {
  OnigUChar buffer[ONIG_MAX_ERROR_MESSAGE_LEN];
  const int length =
      info ? onig_error_code_to_str(buffer, code, info) : onig_error_code_to_str(buffer, code);
  return std::string(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
}

// The general category (or one-letter group, or "word" for \\w) that a property name stands
// for, as Oniguruma reads names: case, spaces, '_' and '-' ignored. Empty when unknown.
std::string category_of(std::string_view name) {
  std::string key;
  for (char c : name) {
    if (c != ' ' && c != '_' && c != '-') key.push_back(static_cast<char>(std::tolower(c)));
  }
  static const std::pair<const char*, const char*> kNames[] = {{"letter", "L"},
                                                               {"casedletter", "LC"},
                                                               {"uppercaseletter", "Lu"},
                                                               {"lowercaseletter", "Ll"},
                                                               {"titlecaseletter", "Lt"},
                                                               {"modifierletter", "Lm"},
                                                               {"otherletter", "Lo"},
                                                               {"mark", "M"},
                                                               {"combiningmark", "M"},
                                                               {"nonspacingmark", "Mn"},
                                                               {"spacingmark", "Mc"},
                                                               {"enclosingmark", "Me"},
                                                               {"number", "N"},
                                                               {"decimalnumber", "Nd"},
                                                               {"digit", "Nd"},
                                                               {"letternumber", "Nl"},
                                                               {"othernumber", "No"},
                                                               {"punctuation", "P"},
                                                               {"punct", "P"},
                                                               {"connectorpunctuation", "Pc"},
                                                               {"dashpunctuation", "Pd"},
                                                               {"openpunctuation", "Ps"},
                                                               {"closepunctuation", "Pe"},
                                                               {"initialpunctuation", "Pi"},
                                                               {"finalpunctuation", "Pf"},
                                                               {"otherpunctuation", "Po"},
                                                               {"symbol", "S"},
                                                               {"mathsymbol", "Sm"},
                                                               {"currencysymbol", "Sc"},
                                                               {"modifiersymbol", "Sk"},
                                                               {"othersymbol", "So"},
                                                               {"separator", "Z"},
                                                               {"spaceseparator", "Zs"},
                                                               {"lineseparator", "Zl"},
                                                               {"paragraphseparator", "Zp"},
                                                               {"control", "Cc"},
                                                               {"cntrl", "Cc"},
                                                               {"format", "Cf"},
                                                               {"privateuse", "Co"},
                                                               {"word", "word"}};
  for (const auto& [long_name, code] : kNames) {
    if (key == long_name) return code;
  }
  static const char* const kCodes[] = {"L",  "LC", "Lu", "Ll", "Lt", "Lm", "Lo", "M",  "Mn",
                                       "Mc", "Me", "N",  "Nd", "Nl", "No", "P",  "Pc", "Pd",
                                       "Ps", "Pe", "Pi", "Pf", "Po", "S",  "Sm", "Sc", "Sk",
                                       "So", "Z",  "Zs", "Zl", "Zp", "Cc", "Cf", "Co"};
  for (const char* code : kCodes) {
    std::string lower(code);
    for (char& c : lower) c = static_cast<char>(std::tolower(c));
    if (key == lower) return code;
  }
  return std::string();
}

bool in_category(const CategoryRange& range, const std::string& category) {
  if (category == "word") return range.word;
  if (category == "LC") {
    const std::string_view code = range.category;
    return code == "Lu" || code == "Ll" || code == "Lt";
  }
  return category.size() == 1 ? range.category[0] == category[0] : category == range.category;
}

// The characters Debian's Oniguruma lacks in `category`, as a class body "\x{..}-\x{..}...".
std::string additions_of(const std::string& category) {
  std::string body;
  if (category.empty()) return body;
  // tokenizers' Oniguruma also counts the Latin-1 superscripts and fractions ¹ ² ³ ¼ ½ ¾ as \w.
  if (category == "word") body = "\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";
  for (size_t i = 0; i < kRegexAdditions.size; ++i) {
    const CategoryRange& range = kRegexAdditions.ranges[i];
    if (!in_category(range, category)) continue;
    body += fmt::format("\\x{{{:X}}}", static_cast<uint32_t>(range.first));
    if (range.last != range.first)
      body += fmt::format("-\\x{{{:X}}}", static_cast<uint32_t>(range.last));
  }
  return body;
}

}  // namespace

std::string add_unicode_16_characters(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size());
  for (size_t i = 0; i < pattern.size();) {
    if (pattern[i] != '\\' || i + 1 >= pattern.size()) {
      out.push_back(pattern[i++]);
      continue;
    }
    const char escape = pattern[i + 1];
    std::string base = std::string(pattern.substr(i, 2));
    std::string category;
    bool negated = false;
    size_t next = i + 2;
    if ((escape == 'p' || escape == 'P') && next < pattern.size() && pattern[next] == '{') {
      const size_t close = pattern.find('}', next);
      if (close == std::string_view::npos) {
        out.append(pattern.substr(i));
        break;
      }
      std::string_view name = pattern.substr(next + 1, close - next - 1);
      negated = escape == 'P';
      if (!name.empty() && name[0] == '^') {
        negated = !negated;
        name.remove_prefix(1);
      }
      category = category_of(name);
      base = "\\p{" + std::string(name) + "}";
      next = close + 1;
    } else if (escape == 'w' || escape == 'W' || escape == 'd' || escape == 'D') {
      category = escape == 'w' || escape == 'W' ? "word" : "Nd";
      negated = escape == 'W' || escape == 'D';
      base = escape == 'w' || escape == 'W' ? "\\w" : "\\d";
    }
    const std::string additions = additions_of(category);
    if (additions.empty()) {
      out.append(pattern.substr(i, next - i));
    } else {
      // A nested class: a union inside or outside a bracket expression alike.
      out += (negated ? "[^" : "[") + base + additions + "]";
    }
    i = next;
  }
  return out;
}

Regex::Regex(std::string_view source) : regex_(nullptr) {
  initialize_oniguruma();
  const std::string pattern = add_unicode_16_characters(source);
  OnigRegex compiled = nullptr;
  OnigErrorInfo info;
  const auto* begin = reinterpret_cast<const OnigUChar*>(pattern.data());
  const int status = onig_new(&compiled, begin, begin + pattern.size(), ONIG_OPTION_NONE,
                              ONIG_ENCODING_UTF8, ONIG_SYNTAX_RUBY, &info);
  if (status != ONIG_NORMAL) {
    throw std::invalid_argument("the regular expression '" + std::string(source) +
                                "' does not compile: " + onig_message(status, &info));
  }
  regex_ = compiled;
}

Regex::~Regex() {
  if (regex_) onig_free(static_cast<OnigRegex>(regex_));
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  std::unique_ptr<OnigRegion, void (*)(OnigRegion*)> region(
      onig_region_new(), [](OnigRegion* owned) { onig_region_free(owned, 1); });
  const auto* begin = reinterpret_cast<const OnigUChar*>(text.data());
  const auto* end = begin + text.size();
  size_t from = 0;
  bool matched_before = false;
  size_t last_match_end = 0;
  while (from <= text.size()) {
    onig_region_clear(region.get());
    const int found = onig_search(static_cast<OnigRegex>(regex_), begin, end, begin + from, end,
                                  region.get(), ONIG_OPTION_NONE);
    if (found == ONIG_MISMATCH) break;
    if (found < 0)
      throw std::runtime_error("regular expression search failed: " + onig_message(found, nullptr));
    const auto start = static_cast<size_t>(region->beg[0]);
    const auto stop = static_cast<size_t>(region->end[0]);
    if (start == stop && matched_before && last_match_end == stop) {
      // An empty match where the last one ended: step over one character and search again.
      from += from < text.size() ? utf8_length(static_cast<unsigned char>(text[from])) : 1;
      continue;
    }
    matches.emplace_back(start, stop);
    from = stop;
    matched_before = true;
    last_match_end = stop;
  }
  return matches;
}

}  // namespace engine::hf
