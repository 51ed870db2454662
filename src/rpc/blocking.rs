//! The blocking forms of the client stubs: a stream read by blocking the
//! calling thread, and a sink fed from a blocking iterator.

use futures::executor::{block_on, block_on_stream, BlockingStream};
use futures::{Sink, SinkExt, Stream};
use grpcio::WriteFlags;

/// Sends every item of a blocking iterator, one write in flight at a time
/// (HTTP/2 flow control paces the producer), then half-closes.
pub(crate) fn send_blocking<T, S>(
    sink: &mut S,
    items: impl IntoIterator<Item = T>,
) -> grpcio::Result<()>
where
    S: Sink<(T, WriteFlags), Error = grpcio::Error> + Unpin,
{
    for item in items {
        block_on(sink.send((item, WriteFlags::default())))?;
    }
    block_on(sink.close())
}

/// A response stream read by blocking the calling thread. It holds the
/// channel: grpcio stops a call's completion queue when the last handle on
/// its channel goes, so the iterator must not outlive it.
pub struct BlockingResponses<S: Stream + Unpin> {
    responses: BlockingStream<S>,
    _channel: grpcio::Channel,
}

impl<S: Stream + Unpin> BlockingResponses<S> {
    pub(crate) fn new(stream: S, channel: &grpcio::Channel) -> Self {
        BlockingResponses {
            responses: block_on_stream(stream),
            _channel: channel.clone(),
        }
    }
}

impl<S: Stream + Unpin> Iterator for BlockingResponses<S> {
    type Item = S::Item;

    fn next(&mut self) -> Option<S::Item> {
        self.responses.next()
    }
}
