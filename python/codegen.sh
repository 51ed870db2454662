#!/bin/bash
# The lab's codegen step for the Python reference: grpcio-tools' protoc.
# protos/messenger.proto is a link to the project's one contract, proto/messenger.proto.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-../.venv/bin/python3}"
"$PY" -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. protos/messenger.proto ||
    { echo "python/codegen.sh: protoc (grpc_tools, with $PY) failed" >&2; exit 1; }
echo "✅ Generated gRPC code in python/protos/ folder."
