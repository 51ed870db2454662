//! `--token-file`: a bearer token sent as `authorization: Bearer <JWT>` on
//! every call. As C-core refuses call credentials on an insecure channel, a
//! token never goes out in plaintext, except to this machine (a loopback
//! address or a Unix socket), where nothing on the network can read it.

use std::fmt;
use std::path::Path;

use grpcio::MetadataBuilder;

use super::target::is_local;
use super::ClientError;
use crate::auth::AUTHORIZATION;

/// A bearer token. Its `Debug` shows none of it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

impl BearerToken {
    /// A token as given; it must be one printable ASCII word, as a header value.
    pub fn new(token: &str) -> Result<BearerToken, String> {
        let token = token.trim();
        if token.is_empty() {
            return Err("the token is empty".to_owned());
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "the token is not one word of printable ASCII (a JWT is base64url and dots)"
                    .to_owned(),
            );
        }
        Ok(BearerToken(token.to_owned()))
    }

    /// The token in the file at `path`, surrounding whitespace (a final
    /// newline) removed; a problem is told without the file's contents.
    pub fn read(path: &Path) -> Result<BearerToken, ClientError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ClientError::Setup(format!("cannot read --token-file {}: {e}", path.display()))
        })?;
        BearerToken::new(&text)
            .map_err(|why| ClientError::Setup(format!("--token-file {}: {why}", path.display())))
    }

    /// Adds the `authorization` header to `headers`.
    pub(crate) fn add_to(&self, headers: &mut MetadataBuilder) -> Result<(), ClientError> {
        headers.add_str(AUTHORIZATION, &format!("Bearer {}", self.0))?;
        Ok(())
    }
}

/// Whether a token may go to `target`: over TLS anywhere, in plaintext only
/// to this machine. The refusal is a usage error, said before any call.
pub(crate) fn check_transport(target: &str, tls: bool) -> Result<(), ClientError> {
    if tls || is_local(target) {
        return Ok(());
    }
    Err(ClientError::Usage(format!(
        "refusing to send the token in plaintext to {target}: use --tls-ca, or a loopback address"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_one_printable_word_and_never_shown() {
        let token = BearerToken::new("  abc.def.ghi\n").unwrap();
        assert_eq!(token, BearerToken("abc.def.ghi".to_owned()));
        assert_eq!(format!("{token:?}"), "BearerToken(..)");
        for bad in ["", " \n", "two words", "tab\there", "é.b.c"] {
            assert!(BearerToken::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plaintext_goes_to_this_machine_only() {
        assert!(check_transport("localhost:50051", false).is_ok());
        assert!(check_transport("unix:/tmp/s", false).is_ok());
        assert!(check_transport("example.org:443", true).is_ok());
        let refused = check_transport("example.org:443", false).unwrap_err();
        assert_eq!(refused.exit_code(), super::super::exit::USAGE);
        assert_eq!(
            refused.to_string(),
            "refusing to send the token in plaintext to example.org:443: use --tls-ca, or a loopback address"
        );
    }
}
