"""Wire protocols of the stream subresources (exec, attach, port-forward).

What kubectl and the client libraries speak to reach a container's stdio or a pod's
ports, written from the protocol descriptions:

- `spdy_frames` / `spdy_session`: SPDY/3.1 framing (with the zlib header dictionary)
  and a server-side session of streams, as the kubelet's streaming server accepts
  them (`X-Stream-Protocol-Version` v1–v4 for commands, `portforward.k8s.io`);
- `channels`: the WebSocket channel protocols (`v5.channel.k8s.io` down to
  `channel.k8s.io` and `base64.channel.k8s.io`): one byte of channel, then data;
- `upgrade`: taking over an aiohttp connection after a `101 Switching Protocols`
  (SPDY is not an upgrade aiohttp knows), and byte pipes over it or a WebSocket;
- `remotecommand`: an exec or attach session over either transport;
- `portforward`: port-forward sessions over SPDY, SPDY tunnelled in a WebSocket,
  and the WebSocket channel protocol.
"""
