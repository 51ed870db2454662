#!/usr/bin/env python3
"""A well-behaved client for scripts/abuse.sh: GetLearningStatus calls one
after another on one channel (each with a 5 s deadline) for --seconds, then
one JSON object: calls, failures, p50/p99/max latency in ms."""
import argparse
import json
import time

import grpc

from lab_stubs import pb2, pb2_grpc


def percentile(sorted_ms, q):
    if not sorted_ms:
        return None
    return round(sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))], 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pause-ms", type=float, default=5.0, help="between calls")
    args = parser.parse_args()
    channel = grpc.insecure_channel(args.target)
    stub = pb2_grpc.LearningMessengerStub(channel)
    request = pb2.StatusRequest(user_id="legit")
    stub.GetLearningStatus(request, timeout=5)  # connected before the clock starts
    latencies, failures = [], []
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        try:
            stub.GetLearningStatus(request, timeout=5)
            latencies.append((time.perf_counter() - started) * 1000)
        except grpc.RpcError as e:
            failures.append(f"{e.code().name}: {e.details()}")
        time.sleep(args.pause_ms / 1000)
    latencies.sort()
    print(
        json.dumps(
            {
                "calls": len(latencies) + len(failures),
                "failures": len(failures),
                "failure_examples": failures[:3],
                "p50_ms": percentile(latencies, 0.50),
                "p99_ms": percentile(latencies, 0.99),
                "max_ms": round(latencies[-1], 3) if latencies else None,
            }
        )
    )


if __name__ == "__main__":
    main()
