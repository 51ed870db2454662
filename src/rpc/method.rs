//! Method descriptors: the RPC's path and pattern, and how its messages are
//! (de)serialised.

use grpcio::{GrpcSlice, Marshaller, MessageReader, Method, MethodType, Result};

/// A method descriptor whose messages travel as protobuf binary.
pub(crate) const fn protobuf_method<Req: protobuf::Message, Resp: protobuf::Message>(
    ty: MethodType,
    path: &'static str,
) -> Method<Req, Resp> {
    Method {
        ty,
        name: path,
        req_mar: Marshaller {
            ser: grpcio::pb_ser,
            de: grpcio::pb_de,
        },
        resp_mar: Marshaller {
            ser: grpcio::pb_ser,
            de: grpcio::pb_de,
        },
    }
}

/// A request as it arrived, still encoded: a server decodes it with its
/// [`RequestDecoder`](super::RequestDecoder), which first checks its size.
pub(crate) struct Encoded(pub(crate) MessageReader);

/// The server's side of `method`: the same RPC, its requests received [`Encoded`].
pub(crate) fn server_side<Req, Resp: protobuf::Message>(
    method: &Method<Req, Resp>,
) -> Method<Encoded, Resp> {
    Method {
        ty: method.ty,
        name: method.name,
        req_mar: Marshaller {
            ser: encoded_is_never_sent,
            de: |reader| Ok(Encoded(reader)),
        },
        resp_mar: Marshaller {
            ser: grpcio::pb_ser,
            de: grpcio::pb_de,
        },
    }
}

/// `Encoded` only travels inwards: a server never sends a request.
fn encoded_is_never_sent(_: &Encoded, _: &mut GrpcSlice) -> Result<()> {
    Err(grpcio::Error::Codec(
        "a received request cannot be sent on".into(),
    ))
}
