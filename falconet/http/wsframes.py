"""Websocket messages encoded once for many subscribers.

A server's frames are not masked (RFC 6455, 5.1), so the frame of a text message — header and UTF-8
payload — is the same bytes on every connection that negotiated no extension. :class:`SharedFrame` keeps
a message's text and encodes its frame once, on first use; the server (``falconet/http/serve.py``) offers
each websocket a way to write such a frame as it is (the ASGI scope extension :data:`WS_FRAMES`), and
falls back to sending the text through ASGI where a connection is not open or negotiated an extension
whose frames depend on the connection.

permessage-deflate (RFC 7692), which browsers always offer: on a connection whose app said it sends shared
frames (``"shared"`` in the extension, set before it accepts), the server answers it with
``server_no_context_takeover`` (7.1.1.1), so each message it sends is compressed on its own, with a fresh
compressor, and its compressed frame depends only on the message and the window size the client allowed
(``server_max_window_bits``). :meth:`SharedFrame.deflated` compresses a message once per window size, as
wsproto would for that connection, and the same bytes go to every such subscriber.
"""
from __future__ import annotations

import zlib

#: ASGI scope extension of a websocket whose server takes pre-encoded frames:
#: ``scope["extensions"][WS_FRAMES]["send"]`` is ``async (message: SharedFrame) -> bool`` — False when the
#: frame was not written (send the text as an ordinary ``websocket.send`` instead); the app sets
#: ``scope["extensions"][WS_FRAMES]["shared"] = True`` before it accepts when it will send shared frames,
#: so that permessage-deflate is negotiated without server context takeover and takes them too
WS_FRAMES = "falconet.websocket.frames"

_TEXT = 0x81           # FIN, opcode text
_DEFLATED_TEXT = 0xC1  # FIN, RSV1 (compressed message, RFC 7692 6.1), opcode text
_SYNC_TAIL = b"\x00\x00\xff\xff"


def _frame(first: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        head = bytes((first, size))
    elif size < 1 << 16:
        head = bytes((first, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, 127)) + size.to_bytes(8, "big")
    return head + payload


def text_frame(text: str) -> bytes:
    """The complete unmasked frame (FIN, opcode text, no extension) of one text message."""
    return _frame(_TEXT, text.encode("utf-8"))


def deflated_text_frame(text: str, window_bits: int) -> bytes:
    """The complete unmasked frame of one text message compressed on its own (permessage-deflate without
    context takeover): raw DEFLATE with ``window_bits``, flushed, its final empty block's
    ``00 00 ff ff`` removed (RFC 7692 7.2.1) — the bytes wsproto sends for it on such a connection."""
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -window_bits)
    data = compressor.compress(text.encode("utf-8")) + compressor.flush(zlib.Z_SYNC_FLUSH)
    if data.endswith(_SYNC_TAIL):
        data = data[:-len(_SYNC_TAIL)]
    return _frame(_DEFLATED_TEXT, data)


class SharedFrame:
    """One text message sent to many websockets: its text, its frame encoded once, on first use, and its
    compressed frame once per window size asked for."""

    __slots__ = ("text", "_frame", "_deflated")

    def __init__(self, text: str):
        self.text = text
        self._frame: bytes | None = None
        self._deflated: dict[int, bytes] | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self.text)
        return self._frame

    def deflated(self, window_bits: int) -> bytes:
        """The frame compressed without context takeover with ``window_bits`` (9–15)."""
        if self._deflated is None:
            self._deflated = {}
        frame = self._deflated.get(window_bits)
        if frame is None:
            frame = self._deflated[window_bits] = deflated_text_frame(self.text, window_bits)
        return frame
