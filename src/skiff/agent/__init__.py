"""The node agent (the kubelet): runs the pods bound to its node through a runtime.

`agent.NodeAgent` wires the parts: node registration and heartbeat (`node_status`,
`lease`), one worker per pod (`pod_workers`, `pod_sync`), volumes, environment,
probes, status, events, and the agent's HTTPS server (`server`) whose log, stats
and stream endpoints the API server proxies to. `streams` is the seam that stream
handlers (exec, attach, port-forward) build on.
"""
