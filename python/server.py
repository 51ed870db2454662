"""The lab's server.py, the Python reference. Additions only: --port, a delay
scale (MESSENGER_DELAY_SCALE / --delay-scale), live logs, clean SIGTERM stop."""
import argparse
import os
import signal
import sys

import grpc
from concurrent import futures
import time

# Generated gRPC code
# These modules handle the low-level binary framing and marshalling
import protos.messenger_pb2 as pb2
import protos.messenger_pb2_grpc as pb2_grpc

# Multiplies every simulated 1 s latency of the lab (0 disables them).
DELAY_SCALE = float(os.environ.get("MESSENGER_DELAY_SCALE", "1.0"))


class LearningMessengerServicer(pb2_grpc.LearningMessengerServicer):
    """
    ARCHITECTURE NOTE: The Servicer is the backend heart of the gRPC system.
    It inherits from the generated base class to implement the actual application logic
    behind the strictly-typed Service Contract.
    """

    def GetLearningStatus(self, request, context):
        """1. UNARY: Basic Request-Response (a liveness handshake)."""
        print(f"📡 Unary Request from: {request.user_id}")
        return pb2.StatusResponse(
            message=f"System ready for research. Status check OK.",
            active=True
        )

    def StreamLearnings(self, request, context):
        """2. SERVER STREAMING: Single request, multiple responses pushed to client."""
        topic = request.topic
        print(f"📡 Server Streaming topic: {topic}")
        updates = [
            f"Searching for research papers on {topic}...",
            f"Analyzing core principles of {topic}...",
            f"Synthesizing key gRPC use cases...",
            "Finalizing the consolidated report."
        ]
        for i, update in enumerate(updates):
            # Simulated real-time latency
            time.sleep(1 * DELAY_SCALE)
            yield pb2.LearningUpdate(
                content=update,
                progress=(i + 1) * 25,
                timestamp=time.strftime("%H:%M:%S")
            )

    def SubmitResearchNotes(self, request_iterator, context):
        """3. CLIENT STREAMING: Client sends stream, server responds with summary at end."""
        print("📡 Receiving stream of research notes...")
        count = 0
        notes = []
        for note in request_iterator:
            count += 1
            notes.append(note.text)
            print(f" - Received fragment {count}: {note.text[:20]}...")

        return pb2.SummaryResponse(
            count=count,
            final_summary=f"Processed {count} notes. Key takeaway: {notes[-1] if notes else 'None'}"
        )

    def CollaborativeFeed(self, request_iterator, context):
        """4. BI-DIRECTIONAL STREAMING: Continuous shared flow between both client and server."""
        print("📡 Bi-directional 'Collaborative Feed' opened.")
        for feed_update in request_iterator:
            print(f" [Feed] From {feed_update.user}: {feed_update.message}")
            # FULL-DUPLEX ECHO: Immediate real-time response to received data
            yield pb2.FeedUpdate(
                user="System",
                message=f"Acknowledged {feed_update.user}'s update: {feed_update.message}"
            )


def _stop(signum, frame):
    raise KeyboardInterrupt


def serve(port=50051):
    """
    - CONCURRENCY: ThreadPoolExecutor, so long-lived streaming calls do not block other clients.
    - MULTIPLEXING: All patterns are registered on the same port using HTTP/2 multiplexing.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    pb2_grpc.add_LearningMessengerServicer_to_server(
        LearningMessengerServicer(), server
    )
    port = server.add_insecure_port(f'[::]:{port}')
    print(f"🚀 gRPC server logic running on port {port}...")
    server.start()
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # Ctrl-C, even when started in the background
    try:
        while True:
            time.sleep(86400)  # Maintain daemon state
    except KeyboardInterrupt:
        server.stop(0)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description="LearningMessenger gRPC server (Python reference)")
    parser.add_argument("--port", type=int, default=50051, help="port to bind on [::] (default 50051)")
    parser.add_argument("--delay-scale", type=float, default=None,
                        help="multiplies the simulated 1 s delays (default $MESSENGER_DELAY_SCALE or 1.0; 0 disables)")
    args = parser.parse_args()
    if args.delay_scale is not None:
        DELAY_SCALE = args.delay_scale
    sys.stdout.reconfigure(line_buffering=True)  # logs appear live, even through a pipe
    serve(args.port)
