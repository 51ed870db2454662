"""The lab's generated stubs (python/protos/, made by python/codegen.sh), for
the harnesses beside this file: they test the server, they are not the lab."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import protos.messenger_pb2 as pb2  # noqa: E402,F401
import protos.messenger_pb2_grpc as pb2_grpc  # noqa: E402,F401
