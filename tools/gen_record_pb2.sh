#!/usr/bin/env bash
# Regenerates jobflow/_src/data/record_pb2.py and record_pb2.pyi from record.proto (OneFlow's
# oneflow/core/record/record.proto at v0.4.0, unchanged). protoc 25.1 (grpcio-tools 1.62.3)
# writes code without a runtime version check, so the module loads on every protobuf >= 4.21
# that pyproject.toml allows (newer protoc pins the runtime to its own major version).
# The descriptor's file name is jobflow/_src/data/record.proto; the messages keep OneFlow's
# package name, "oneflow" (oneflow.OFRecord, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python -m pip install --quiet --no-deps --target "$tmp" grpcio-tools==1.62.3
PYTHONPATH="$tmp" python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. jobflow/_src/data/record.proto
