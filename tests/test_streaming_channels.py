"""WebSocket channel protocols (skiff.streaming.channels)."""

from __future__ import annotations

import pytest

from skiff.streaming import channels as ch


def test_binary_protocols_prefix_the_channel_byte() -> None:
    codec = ch.ChannelCodec(ch.V5)
    assert codec.encode(ch.STDOUT, b"out") == b"\x01out"
    assert codec.decode(b"\x00in") == (ch.STDIN, b"in")
    assert codec.decode(b"\xff\x00") == (ch.CLOSE, b"\x00")
    assert codec.structured_status and codec.can_close and not codec.text


def test_text_frames_on_binary_protocols_are_bytes() -> None:
    # The Python client sends str stdin as a text frame "\x00data".
    assert ch.ChannelCodec(ch.V4).decode("\x00hello\n") == (ch.STDIN, b"hello\n")


def test_base64_protocols() -> None:
    codec = ch.ChannelCodec(ch.V4_BASE64)
    assert codec.text and codec.structured_status and not codec.can_close
    assert codec.encode(ch.STDERR, b"\x00\xff") == "2AP8="
    assert codec.decode("0aGk=") == (ch.STDIN, b"hi")
    assert codec.decode(b"4eyJXaWR0aCI6MX0=") == (ch.RESIZE, b'{"Width":1}')
    with pytest.raises(ch.ChannelError):
        codec.decode("0not base64!")


def test_old_protocols_report_failures_as_text() -> None:
    for proto in (ch.V1, ch.V1_BASE64, ""):
        codec = ch.ChannelCodec(proto)
        assert not codec.structured_status and not codec.can_close


def test_empty_messages_are_errors() -> None:
    with pytest.raises(ch.ChannelError):
        ch.ChannelCodec(ch.V5).decode(b"")


def test_negotiate_takes_the_clients_order() -> None:
    supported = ch.REMOTE_COMMAND_PROTOCOLS
    assert ch.negotiate("v5.channel.k8s.io,v4.channel.k8s.io", supported) == ch.V5
    assert ch.negotiate("v4.channel.k8s.io, v5.channel.k8s.io", supported) == ch.V4
    assert ch.negotiate("", supported) == ""
    assert ch.negotiate("v9.channel.k8s.io", supported) is None
    # Port-forward: kubectl tunnels SPDY; the Python client asks for v5 then v4.
    assert ch.negotiate(ch.SPDY_TUNNEL, ch.PORT_FORWARD_PROTOCOLS) == ch.SPDY_TUNNEL
    assert ch.negotiate("v5.channel.k8s.io,v4.channel.k8s.io",
                        ch.PORT_FORWARD_PROTOCOLS) == ch.V4


def test_port_prefix_is_little_endian() -> None:
    assert ch.port_prefix(8080) == b"\x90\x1f"
    assert ch.port_prefix(80) == b"P\x00"
