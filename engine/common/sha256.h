// SHA-256 of bytes and files (OpenSSL), for the bundle's checksums and the identity of job inputs.
#pragma once

#include <cstddef>
#include <string>

namespace engine {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t bytes);
  // The digest in lower-case hex; the object is spent afterwards.
  std::string hex();

 private:
  void* context_;  // EVP_MD_CTX, kept out of this header
};

// The SHA-256 of a file's contents in hex. Throws ConfigError when it cannot be read.
std::string file_sha256(const std::string& path);

}  // namespace engine
