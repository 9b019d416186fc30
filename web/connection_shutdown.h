// ShutdownConnections: ends, at the TCP level, every connection this process accepted on a local port, so
// that server threads blocked reading an idle keep-alive connection or writing to a client that does not
// read return at once (HttpServer::Stop; cpp-httplib offers no way to reach its connections). Listening
// sockets and connections to other ports are left alone; descriptors stay open for their owners to close.
// Free function; thread-safe.
#ifndef REWIND_WEB_CONNECTION_SHUTDOWN_H_
#define REWIND_WEB_CONNECTION_SHUTDOWN_H_

namespace rwd {

// Returns how many connections were shut down.
int ShutdownConnections(int local_port);

}  // namespace rwd

#endif  // REWIND_WEB_CONNECTION_SHUTDOWN_H_
