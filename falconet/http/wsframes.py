"""Websocket messages encoded once for many subscribers.

A server's frames are not masked (RFC 6455, 5.1), so the frame of a text message — header and UTF-8
payload — is the same bytes on every connection that negotiated no extension. :class:`SharedFrame` keeps
a message's text and encodes its frame once, on first use; the server (``falconet/http/serve.py``) offers
each websocket a way to write such a frame as it is (the ASGI scope extension :data:`WS_FRAMES`), and
falls back to sending the text through ASGI where a connection negotiated an extension (permessage-deflate
compresses per connection) or is not open.
"""
from __future__ import annotations

#: ASGI scope extension of a websocket whose server takes pre-encoded frames:
#: ``scope["extensions"][WS_FRAMES]["send"]`` is ``async (frame: bytes) -> bool`` — False when the frame
#: was not written (send the text as an ordinary ``websocket.send`` instead)
WS_FRAMES = "falconet.websocket.frames"


def text_frame(text: str) -> bytes:
    """The complete unmasked frame (FIN, opcode text, no extension) of one text message."""
    payload = text.encode("utf-8")
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = b"\x81\x7e" + size.to_bytes(2, "big")
    else:
        head = b"\x81\x7f" + size.to_bytes(8, "big")
    return head + payload


class SharedFrame:
    """One text message sent to many websockets: its text, and its frame encoded once, on first use."""

    __slots__ = ("text", "_frame")

    def __init__(self, text: str):
        self.text = text
        self._frame: bytes | None = None

    @property
    def frame(self) -> bytes:
        if self._frame is None:
            self._frame = text_frame(self.text)
        return self._frame
