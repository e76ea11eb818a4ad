"""A TLS front for grpcio: mutual TLS with OpenSSL, relayed to a private socket.

go-plugin's AutoMTLS client certificate is ECDSA on P-521. grpcio's TLS
(BoringSSL) does not offer ecdsa_secp521r1_sha512 when it asks for a client
certificate, so Go's TLS client sends none and the handshake fails with
PEER_DID_NOT_RETURN_A_CERTIFICATE. Python's ssl module (OpenSSL) accepts
that signature, so the plugin terminates TLS here and relays the decrypted
HTTP/2 bytes to grpcio on a Unix socket in a directory only this user can
enter (grpcio's local credentials refuse anything but a Unix socket).

The relay is one asyncio loop on its own thread: each connection is two
copy loops, and either side closing closes both.
"""

import asyncio
import socket
import ssl
import threading

_CHUNK = 64 * 1024


class Front:
    def __init__(self, listener, ssl_context, backend_path, log):
        self._listener = listener
        self._ctx = ssl_context
        self._backend = backend_path
        self._log = log
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._on_loop_error)
        self._thread = threading.Thread(target=self._loop.run_forever, name="tls-front", daemon=True)
        self._server = None
        self._conns = set()
        self._stopped = False

    def start(self):
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result()

    async def _start(self):
        kwargs = dict(sock=self._listener, ssl=self._ctx, ssl_handshake_timeout=10, limit=_CHUNK)
        if self._listener.family == socket.AF_UNIX:
            self._server = await asyncio.start_unix_server(self._serve, **kwargs)
        else:
            self._server = await asyncio.start_server(self._serve, **kwargs)

    def stop(self):
        """Stops listening and closes every relayed connection; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if not self._thread.is_alive():
            self._listener.close()
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(5)
        except Exception as e:  # noqa: BLE001 - shutting down regardless
            self._log.debug("stopping the TLS front", error=repr(e))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _stop(self):
        if self._server is not None:
            self._server.close()
        for w in list(self._conns):
            w.close()
        self._conns.clear()

    async def _serve(self, client_r, client_w):
        peer_alpn = client_w.get_extra_info("ssl_object").selected_alpn_protocol()
        try:
            backend_r, backend_w = await asyncio.open_unix_connection(self._backend, limit=_CHUNK)
        except OSError as e:
            self._log.error("cannot reach the gRPC server behind the TLS front", error=str(e))
            client_w.close()
            return
        self._log.trace("host connected", alpn=peer_alpn)
        self._conns.update((client_w, backend_w))
        try:
            await asyncio.gather(_copy(client_r, backend_w), _copy(backend_r, client_w))
        finally:
            self._conns.discard(client_w)
            self._conns.discard(backend_w)

    def _on_loop_error(self, loop, context):
        # A failed handshake (a process that is not the host) lands here;
        # it is worth a line, not a traceback on stderr.
        exc = context.get("exception")
        self._log.debug("TLS front: " + context.get("message", "error"),
                        error=repr(exc) if exc else "")


async def _copy(r, w):
    """Copies r to w until either ends, then closes w (ending the pair)."""
    try:
        while True:
            data = await r.read(_CHUNK)
            if not data:
                break
            w.write(data)
            await w.drain()
    except (ConnectionError, OSError, ssl.SSLError, asyncio.IncompleteReadError):
        pass
    finally:
        w.close()
