//! Per-message compression: which algorithm a side prefers for what it sends.
//! Both sides accept gzip and deflate whatever they send; decompression is
//! bounded by the message limit (patches/grpcio-sys/0002).

use std::ffi::CString;
use std::fmt;
use std::str::FromStr;

use grpcio::{ChannelBuilder, CompressionAlgorithms, CompressionLevel};

/// What a side compresses its messages with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Deflate,
}

impl FromStr for Compression {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "deflate" => Ok(Compression::Deflate),
            other => Err(format!(
                "unknown compression {other:?} (use gzip, deflate or none)"
            )),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Deflate => "deflate",
        })
    }
}

impl Compression {
    /// A server's answers: compressed only with an algorithm the client
    /// announced in `grpc-accept-encoding`. C-core forces a default
    /// *algorithm* on every client, but picks by a default *level* among what
    /// each client accepts, ranking gzip before deflate: the lowest level
    /// takes the first of them (gzip), the highest the last (deflate). A
    /// client that accepts neither gets its answers uncompressed.
    pub(crate) fn for_answers(self, builder: ChannelBuilder) -> ChannelBuilder {
        let builder = match self {
            Compression::None => return builder,
            _ => with_zlib_level(builder),
        };
        match self {
            Compression::None => builder,
            Compression::Gzip => {
                builder.default_compression_level(CompressionLevel::GRPC_COMPRESS_LEVEL_LOW)
            }
            Compression::Deflate => {
                builder.default_compression_level(CompressionLevel::GRPC_COMPRESS_LEVEL_HIGH)
            }
        }
    }

    /// A client's requests: every gRPC server accepts gzip and deflate.
    pub(crate) fn for_requests(self, builder: ChannelBuilder) -> ChannelBuilder {
        let algorithm = match self {
            Compression::None => return builder,
            Compression::Gzip => CompressionAlgorithms::GRPC_COMPRESS_GZIP,
            Compression::Deflate => CompressionAlgorithms::GRPC_COMPRESS_DEFLATE,
        };
        with_zlib_level(builder).default_compression_algorithm(algorithm)
    }
}

/// zlib's own default level (what Z_DEFAULT_COMPRESSION stands for).
const ZLIB_DEFAULT_LEVEL: i32 = 6;

/// grpcio-sys 0.13's C-core clamps an unset `grpc.gzip_compression_level`
/// (Z_DEFAULT_COMPRESSION, -1) to 0, no compression: every message would
/// "compress" bigger and go out uncompressed under a `grpc-encoding` header.
/// The level set explicitly, gzip and deflate compress as zlib does by default.
fn with_zlib_level(builder: ChannelBuilder) -> ChannelBuilder {
    builder.raw_cfg_int(
        CString::from(c"grpc.gzip_compression_level"),
        ZLIB_DEFAULT_LEVEL,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for compression in [Compression::None, Compression::Gzip, Compression::Deflate] {
            assert_eq!(compression.to_string().parse(), Ok(compression));
        }
        assert!("brotli"
            .parse::<Compression>()
            .unwrap_err()
            .contains("gzip, deflate or none"));
    }
}
