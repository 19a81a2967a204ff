"""The API server side of ``kubectl port-forward`` over SPDY/3.1, for the fake API server.

kubectl 1.32 first tries a WebSocket tunnel and, when the server refuses the upgrade (as API
servers before 1.30 do), falls back to ``POST .../pods/NAME/portforward`` with ``Upgrade: SPDY/3.1``
and ``X-Stream-Protocol-Version: portforward.k8s.io``. After ``101 Switching Protocols`` the
connection speaks SPDY/3 (https://www.chromium.org/spdy/spdy-protocol/spdy-protocol-draft3/):
for each local connection kubectl opens an *error* stream and a *data* stream (``SYN_STREAM`` with
headers ``streamtype``, ``port``, ``requestid``; header blocks zlib-compressed with the SPDY/3
dictionary) and waits for ``SYN_REPLY``. Data frames on the data stream are the TCP payload; the
server ends a forwarded connection with ``FIN`` on the data stream and then on the error stream
(an empty error stream means success). ``PING`` frames are echoed.

Here the "pod" is a TCP server on 127.0.0.1 chosen by the test (``FakeKube.set_backend``); without
one, the error stream carries the kubelet's "connection refused" message, as a real pod with
nothing listening would.
"""

from __future__ import annotations

import socket
import struct
import threading
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import io

_WORDS = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header compression dictionary (spec section 2.6.10.1): length-prefixed words, then a tail.
SPDY3_DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()
assert zlib.adler32(SPDY3_DICTIONARY) == 0xE3C6A7C2, "SPDY/3 dictionary mismatch"

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
MAX_FRAME = 1 << 24


class SpdySession:
    """One upgraded connection. ``serve()`` runs until kubectl closes it (or GOAWAY)."""

    def __init__(
        self, rfile: io.BufferedIOBase, sock: socket.socket, *, pod: str, backend: int | None
    ) -> None:
        self.rfile = rfile
        self.sock = sock
        self.pod = pod
        self.backend = backend
        self.inflate = zlib.decompressobj(zdict=SPDY3_DICTIONARY)
        self.deflate = zlib.compressobj(zdict=SPDY3_DICTIONARY)
        self.write_lock = threading.Lock()
        self.streams: dict[int, dict[str, str]] = {}
        self.errors: dict[str, int] = {}  # requestid -> error stream id
        self.conns: dict[int, socket.socket] = {}  # data stream id -> backend connection
        self.threads: list[threading.Thread] = []

    # -- frames ---------------------------------------------------------------------------------
    def _read(self, n: int) -> bytes | None:
        data = self.rfile.read(n)
        return data if data and len(data) == n else None

    def _send(self, data: bytes) -> None:
        with self.write_lock:
            try:
                self.sock.sendall(data)
            except OSError:  # kubectl went away; the reader loop ends too
                return

    def _control(self, kind: int, flags: int, payload: bytes) -> None:
        self._send(struct.pack(">HHI", 0x8000 | 3, kind, (flags << 24) | len(payload)) + payload)

    def _data(self, stream_id: int, payload: bytes, *, fin: bool = False) -> None:
        self._send(struct.pack(">II", stream_id, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload)

    def _header_block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers))
        for name, value in headers.items():
            raw += (
                struct.pack(">I", len(name)) + name.encode() + struct.pack(">I", len(value)) + value.encode()
            )
        return self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def _parse_headers(self, block: bytes) -> dict[str, str]:
        raw = self.inflate.decompress(block)
        (count,) = struct.unpack_from(">I", raw, 0)
        offset, headers = 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from(">I", raw, offset)
            name = raw[offset + 4 : offset + 4 + n].decode()
            offset += 4 + n
            (n,) = struct.unpack_from(">I", raw, offset)
            headers[name.lower()] = raw[offset + 4 : offset + 4 + n].decode()
            offset += 4 + n
        return headers

    # -- session --------------------------------------------------------------------------------
    def serve(self) -> None:
        try:
            while (head := self._read(8)) is not None:
                first, second = struct.unpack(">II", head)
                flags, length = second >> 24, second & 0xFFFFFF
                payload = self._read(length) if length else b""
                if payload is None:
                    break
                if first & 0x80000000:
                    kind = first & 0xFFFF
                    if kind == GOAWAY:
                        break
                    self._on_control(kind, payload)
                else:
                    self._on_data(first & 0x7FFFFFFF, flags, payload)
        finally:
            for conn in list(self.conns.values()):
                conn.close()
            for thread in self.threads:
                thread.join(timeout=5)

    def _on_control(self, kind: int, payload: bytes) -> None:
        if kind == PING:
            self._control(PING, 0, payload)
        elif kind == SYN_STREAM:
            (stream_id,) = struct.unpack_from(">I", payload, 0)
            stream_id &= 0x7FFFFFFF
            headers = self._parse_headers(payload[10:])
            self.streams[stream_id] = headers
            self._control(SYN_REPLY, 0, struct.pack(">I", stream_id) + self._header_block({}))
            if headers.get("streamtype") == "error":
                self.errors[headers.get("requestid", "")] = stream_id
            elif headers.get("streamtype") == "data":
                self._open(stream_id, headers)
        elif kind == RST_STREAM:
            (stream_id,) = struct.unpack_from(">I", payload, 0)
            conn = self.conns.pop(stream_id & 0x7FFFFFFF, None)
            if conn is not None:
                conn.close()
        # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do for small test payloads.

    def _on_data(self, stream_id: int, flags: int, payload: bytes) -> None:
        conn = self.conns.get(stream_id)
        if conn is None:
            return
        try:
            if payload:
                conn.sendall(payload)
            if flags & FLAG_FIN:
                conn.shutdown(socket.SHUT_WR)
        except OSError:
            return

    def _open(self, stream_id: int, headers: dict[str, str]) -> None:
        request_id = headers.get("requestid", "")
        port = headers.get("port", "?")
        error_stream = self.errors.get(request_id)
        try:
            if self.backend is None:
                raise ConnectionRefusedError("connection refused")
            conn = socket.create_connection(("127.0.0.1", self.backend), timeout=10)
        except OSError as exc:
            message = (
                f"error forwarding port {port} to pod {self.pod}, uid : "
                f"failed to connect to localhost:{port} inside namespace: "
                f"dial tcp4 127.0.0.1:{port}: connect: {exc.strerror or exc}"
            )
            if error_stream is not None:
                self._data(error_stream, message.encode(), fin=True)
            self._data(stream_id, b"", fin=True)
            return
        self.conns[stream_id] = conn

        def pump() -> None:
            try:
                while chunk := conn.recv(32768):
                    self._data(stream_id, chunk)
            except OSError:
                pass
            self._data(stream_id, b"", fin=True)
            if error_stream is not None:
                self._data(error_stream, b"", fin=True)
            conn.close()

        thread = threading.Thread(target=pump, daemon=True)
        self.threads.append(thread)
        thread.start()
