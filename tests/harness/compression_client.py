"""The Python reference client's four calls with compressed requests: for each
algorithm (gzip, deflate) a channel compressing everything it sends
(`compression=` on the channel, and again per call), every answer checked.
Prints one line per algorithm and call; exits 1 at the first wrong answer.
The lab's messages are a few dozen bytes, which grpc sends uncompressed (they
would grow); a last call uploads a note of BIG_NOTE bytes, which it compresses.

  python3 compression_client.py --target 127.0.0.1:50051 [--stubs DIR]

--stubs: a directory holding generated `protos/` (default: python/protos, the lab's).
"""
import argparse
import sys

import grpc

ALGORITHMS = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}
NOTES = [
    "Note 1: gRPC uses HTTP/2 Multiplexing",
    "Note 2: Built on Protocol Buffers",
    "Note 3: Binary TLV serialization",
    "Note 4: Typed interface contracts",
]
BIG_NOTE = 3000
FEED = [
    ("Engineer", "Initializing system..."),
    ("Lead", "Monitoring data flow..."),
    ("QA", "Verifying latency..."),
]


def check(what, actual, expected):
    if actual != expected:
        print(f"WRONG {what}: {actual!r}, expected {expected!r}", flush=True)
        sys.exit(1)


def run(target, name, algorithm, pb2, pb2_grpc):
    with grpc.insecure_channel(target, compression=algorithm) as channel:
        stub = pb2_grpc.LearningMessengerStub(channel)

        status = stub.GetLearningStatus(pb2.StatusRequest(user_id="researcher-01"), compression=algorithm, timeout=30)
        check("status", (status.message, status.active), ("System ready for research. Status check OK.", True))
        print(f"{name} unary: {status.message}", flush=True)

        updates = list(stub.StreamLearnings(pb2.TopicRequest(topic="gRPC Protocols"), compression=algorithm, timeout=30))
        check("progress", [u.progress for u in updates], [25, 50, 75, 100])
        check("last update", updates[-1].content, "Finalizing the consolidated report.")
        print(f"{name} server streaming: {len(updates)} updates", flush=True)

        summary = stub.SubmitResearchNotes((pb2.ResearchNote(text=n) for n in NOTES), compression=algorithm, timeout=30)
        check(
            "summary",
            (summary.count, summary.final_summary),
            (4, "Processed 4 notes. Key takeaway: Note 4: Typed interface contracts"),
        )
        print(f"{name} client streaming: {summary.final_summary}", flush=True)

        echoes = list(
            stub.CollaborativeFeed(
                (pb2.FeedUpdate(user=u, message=m) for u, m in FEED), compression=algorithm, timeout=30
            )
        )
        check(
            "echoes",
            [(e.user, e.message) for e in echoes],
            [("System", f"Acknowledged {u}'s update: {m}") for u, m in FEED],
        )
        print(f"{name} bidirectional: {len(echoes)} echoes", flush=True)

        big = "a" * BIG_NOTE
        summary = stub.SubmitResearchNotes(iter([pb2.ResearchNote(text=big)]), compression=algorithm, timeout=30)
        check("big summary", (summary.count, summary.final_summary), (1, f"Processed 1 notes. Key takeaway: {big}"))
        print(f"{name} big note: {BIG_NOTE} bytes summarized", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="localhost:50051")
    parser.add_argument("--stubs", help="directory holding the generated protos/ package")
    parser.add_argument("--algorithm", choices=sorted(ALGORITHMS), action="append", help="default: both")
    args = parser.parse_args()
    if args.stubs:
        sys.path.insert(0, args.stubs)
        import protos.messenger_pb2 as pb2
        import protos.messenger_pb2_grpc as pb2_grpc
    else:
        from lab_stubs import pb2, pb2_grpc

    for name in args.algorithm or ["gzip", "deflate"]:
        run(args.target, name, ALGORITHMS[name], pb2, pb2_grpc)
    print("all answers right", flush=True)


if __name__ == "__main__":
    main()
