"""Container runtimes behind one protocol (see `protocol.py`).

`process` runs containers as host processes in their own mount and PID namespaces.
Other runtimes (real OCI containers) plug in behind the same protocol; `sim` runs
virtual nodes that start nothing.
"""
