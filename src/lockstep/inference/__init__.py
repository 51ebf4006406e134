"""The inference layer: batch predictions, the HTTP service, the audit log, ONNX export."""
