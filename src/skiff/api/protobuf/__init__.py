"""Decoding of Kubernetes protobuf request bodies (what kubectl's typed commands send)."""

from skiff.api.protobuf.envelope import CONTENT_TYPE, MAGIC, decode_k8s_protobuf

__all__ = ["CONTENT_TYPE", "MAGIC", "decode_k8s_protobuf"]
