"""The scheduler: a queue, a framework of plugins, and a loop that binds pods to nodes."""
