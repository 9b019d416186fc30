#include "web/tls_write_buffer.h"

#include <openssl/bio.h>

namespace rwd {

TlsWriteBuffer::TlsWriteBuffer(SSL* ssl, size_t bytes) {
  if (ssl == nullptr) return;
  BIO* socket = SSL_get_wbio(ssl);
  if (socket == nullptr) return;
  BIO* buffer = BIO_new(BIO_f_buffer());
  if (buffer == nullptr) return;
  if (BIO_set_write_buffer_size(buffer, static_cast<long>(bytes)) <= 0) {
    BIO_free(buffer);
    return;
  }
  // Two references to the socket BIO: the chain's, and ours for restoring it (SSL_set0_wbio frees the
  // chain it replaces, down to the socket BIO, whose count it decrements).
  BIO_up_ref(socket);
  BIO_up_ref(socket);
  BIO_push(buffer, socket);
  SSL_set0_wbio(ssl, buffer);  // drops the SSL's own reference to `socket`
  ssl_ = ssl;
  socket_ = socket;
  buffer_ = buffer;
}

bool TlsWriteBuffer::Flush() {
  if (buffer_ == nullptr) return true;
  return BIO_flush(buffer_) > 0;
}

TlsWriteBuffer::~TlsWriteBuffer() {
  if (buffer_ == nullptr) return;
  Flush();
  SSL_set0_wbio(ssl_, socket_);  // frees the buffer (and its reference to the socket BIO); ours goes to ssl_
}

}  // namespace rwd
