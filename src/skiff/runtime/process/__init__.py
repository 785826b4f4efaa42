"""The `process` runtime: containers as host processes in their own namespaces."""

from skiff.runtime.process.runtime import ProcessRuntime

__all__ = ["ProcessRuntime"]
