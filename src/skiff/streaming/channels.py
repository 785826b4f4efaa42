"""The WebSocket channel protocols of exec, attach and port-forward.

Each WebSocket message belongs to a numbered channel. In the binary protocols the
first byte is the channel and the rest is data; in the base64 protocols (text
messages) the first character is the channel as a digit ('0' + n) and the rest is
the data, base64-encoded. Channel numbers for commands: 0 stdin, 1 stdout, 2 stderr,
3 error (the final status), 4 resize. Versions differ in what the error channel
carries and how a channel is closed:

- `channel.k8s.io`, `base64.channel.k8s.io` (and the empty protocol): the error
  channel carries a failure's message as text;
- `v4.channel.k8s.io`, `v4.base64.channel.k8s.io`: the error channel carries a
  Status object as JSON, success included, and the exit code of a failed command
  in `details.causes[{"reason": "ExitCode"}]`;
- `v5.channel.k8s.io`: as v4, plus channel 255, "close": a message [255, n] means
  the peer will send nothing more on channel n (how a client ends stdin).

Port-forward uses two channels per requested port (2i data, 2i+1 error) and opens
each with the port number as two little-endian bytes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V5 = "v5.channel.k8s.io"
# Port-forward's SPDY carried in WebSocket binary messages (kubectl 1.30+).
SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"

STDIN = 0
STDOUT = 1
STDERR = 2
ERROR = 3
RESIZE = 4
CLOSE = 255

# In preference order, as a server picks them from what the client offers.
REMOTE_COMMAND_PROTOCOLS = (V5, V4, V4_BASE64, V1, V1_BASE64)
PORT_FORWARD_PROTOCOLS = (SPDY_TUNNEL, V4, V4_BASE64)


class ChannelError(Exception):
    """A message that does not follow the channel protocol."""


@dataclass(frozen=True)
class ChannelCodec:
    """Encodes and decodes the messages of one negotiated channel protocol."""

    protocol: str

    @property
    def text(self) -> bool:
        """Whether messages are text frames (base64 protocols)."""
        return "base64" in self.protocol

    @property
    def structured_status(self) -> bool:
        """Whether the error channel carries a JSON Status (v4 and later)."""
        return self.protocol in (V4, V4_BASE64, V5)

    @property
    def can_close(self) -> bool:
        """Whether channels can be closed with the close signal (v5)."""
        return self.protocol == V5

    def encode(self, channel: int, data: bytes) -> bytes | str:
        """One message carrying `data` on `channel`."""
        if self.text:
            return chr(ord("0") + channel) + base64.b64encode(data).decode("ascii")
        return bytes((channel,)) + data

    def decode(self, message: bytes | str) -> tuple[int, bytes]:
        """The channel and data of a received message."""
        if isinstance(message, str) and not self.text:
            # Upstream reads text frames on the binary protocols as bytes too (the
            # Python client sends str data that way).
            message = message.encode("utf-8")
        if isinstance(message, str):
            if not message:
                raise ChannelError("empty message")
            channel = ord(message[0]) - ord("0")
            try:
                return channel, base64.b64decode(message[1:], validate=True)
            except (binascii.Error, ValueError):
                raise ChannelError("invalid base64 data") from None
        if not message:
            raise ChannelError("empty message")
        if self.text:
            # Upstream reads binary messages on base64 protocols the same way.
            channel = message[0] - ord("0")
            try:
                return channel, base64.b64decode(message[1:], validate=True)
            except (binascii.Error, ValueError):
                raise ChannelError("invalid base64 data") from None
        return message[0], bytes(message[1:])


def negotiate(offered: str, supported: tuple[str, ...]) -> str | None:
    """The protocol to answer `Sec-WebSocket-Protocol: offered` with.

    The client's order wins among those `supported`; "" (no protocol) means the
    original binary channel protocol. None: nothing offered is supported.
    """
    wanted = [p.strip() for p in offered.split(",") if p.strip()]
    if not wanted:
        return ""
    for proto in wanted:
        if proto in supported:
            return proto
    return None


def port_prefix(port: int) -> bytes:
    """The first message of a port-forward channel: the port, two bytes little-endian."""
    return port.to_bytes(2, "little")
