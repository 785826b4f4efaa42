"""Container runtimes behind node agents; `sim` runs virtual nodes that start nothing."""
