// TlsWriteBuffer: while it lives, the TLS records OpenSSL writes on one connection gather in a user-space
// buffer and leave in large writes (Flush(), or whenever the buffer fills) instead of one write per 16 KiB
// record. Restores the connection's own write BIO when destroyed. Not thread-safe; one per response, on
// the connection's thread. A null SSL (plain HTTP) makes every call a no-op.
#ifndef REWIND_WEB_TLS_WRITE_BUFFER_H_
#define REWIND_WEB_TLS_WRITE_BUFFER_H_

#include <cstddef>

#include <openssl/ssl.h>

namespace rwd {

class TlsWriteBuffer {
 public:
  TlsWriteBuffer(SSL* ssl, size_t bytes);
  ~TlsWriteBuffer();
  TlsWriteBuffer(const TlsWriteBuffer&) = delete;
  TlsWriteBuffer& operator=(const TlsWriteBuffer&) = delete;

  // Writes out what is buffered; false if the connection failed.
  bool Flush();

 private:
  SSL* ssl_ = nullptr;
  BIO* socket_ = nullptr;  // the connection's write BIO, one reference held here while buffered
  BIO* buffer_ = nullptr;  // owned by ssl_ while installed
};

}  // namespace rwd

#endif  // REWIND_WEB_TLS_WRITE_BUFFER_H_
