//! A bearer token (`authorization: Bearer <JWT>`), verified offline with the
//! JWKS's keys by `jsonwebtoken`: RS256 or ES256 only (never `none`, never an
//! HMAC whose secret could be a published public key), `exp` required and
//! honoured, `nbf` honoured, both with `jsonwebtoken`'s 60 s of leeway for
//! clock skew, and the issuer and audience when the server names them.
//! Refusals say what is wrong without repeating the token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use grpcio::Metadata;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::identity::{Identity, RoomGrant, Source};
use super::jwks::JwksFile;
use super::refusal::{Reason, Refusal};
use super::AuthConfig;

/// The request header a token travels in.
pub const AUTHORIZATION: &str = "authorization";

/// The algorithms a token may be signed with, as messages name them.
const ACCEPTED: &str = "RS256 or ES256";

/// Verifies the tokens of every call against one JWKS.
pub(crate) struct TokenVerifier {
    keys: JwksFile,
    rs256: Validation,
    es256: Validation,
    issuer: Option<String>,
    audience: Option<String>,
    name_claim: String,
    rooms_claim: String,
    /// The rooms of a token without the rooms claim.
    unlisted_rooms: RoomGrant,
}

impl TokenVerifier {
    pub(crate) fn new(keys: JwksFile, config: &AuthConfig) -> TokenVerifier {
        let validation = |algorithm| {
            let mut validation = Validation::new(algorithm);
            validation.validate_nbf = true;
            let mut required = vec!["exp"];
            // jsonwebtoken checks iss and aud only when a token has them.
            if let Some(issuer) = &config.issuer {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            match &config.audience {
                Some(audience) => {
                    validation.set_audience(&[audience]);
                    required.push("aud");
                }
                // --auth-any-audience (the configuration's check asks for one or the other).
                None => validation.validate_aud = false,
            }
            validation.set_required_spec_claims(&required);
            validation
        };
        TokenVerifier {
            keys,
            rs256: validation(Algorithm::RS256),
            es256: validation(Algorithm::ES256),
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            name_claim: config.name_claim.clone(),
            rooms_claim: config.rooms_claim.clone(),
            unlisted_rooms: config.unlisted_rooms(),
        }
    }

    /// The caller the request's token vouches for, or why it vouches for nobody.
    pub(crate) fn verify(&self, headers: &Metadata) -> Result<Identity, Refusal> {
        let token = bearer_token(headers)?;
        let header = TokenHeader::read(token)?;
        let validation = match header.algorithm {
            Algorithm::RS256 => &self.rs256,
            _ => &self.es256,
        };
        let jwks = self.keys.keys();
        let mut keys = jwks
            .candidates(header.algorithm, header.kid.as_deref())
            .peekable();
        if keys.peek().is_none() {
            return Err(Refusal::new(
                Reason::UnknownKey,
                match header.kid {
                    Some(_) => "wrongly signed token: its key (kid) is not in the server's JWKS",
                    None => "wrongly signed token: the server's JWKS has no key of its algorithm",
                },
            ));
        }
        for key in keys {
            match jsonwebtoken::decode::<Value>(token, &key.key, validation) {
                Ok(data) => return self.identity(&data.claims),
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => continue,
                Err(e) => return Err(self.refusal(e.kind())),
            }
        }
        Err(Refusal::new(
            Reason::Signature,
            "wrongly signed token: its signature does not verify with the server's keys",
        ))
    }

    /// What a verified token's claims say about the caller.
    fn identity(&self, claims: &Value) -> Result<Identity, Refusal> {
        let claim = |name: &str| claims.get(name);
        let name = claim(&self.name_claim)
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
            .ok_or_else(|| {
                malformed(format!(
                    "it has no {:?} claim to name the caller",
                    self.name_claim
                ))
            })?;
        let rooms = match claim(&self.rooms_claim) {
            None => self.unlisted_rooms.clone(),
            Some(Value::Array(rooms)) => rooms
                .iter()
                .map(|room| room.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(RoomGrant::Matching)
                .ok_or_else(|| self.rooms_claim_malformed())?,
            Some(_) => return Err(self.rooms_claim_malformed()),
        };
        let whence = format!("the token's {:?} claim", self.name_claim);
        Identity::new(name, &whence, Source::Token, rooms)
    }

    fn rooms_claim_malformed(&self) -> Refusal {
        malformed(format!(
            "its {:?} claim is not a list of room names",
            self.rooms_claim
        ))
    }

    /// A refusal for what `jsonwebtoken` found wrong with a signed token.
    fn refusal(&self, error: &ErrorKind) -> Refusal {
        let wanted = |what: &Option<String>| what.as_deref().unwrap_or("?").to_owned();
        match error {
            ErrorKind::ExpiredSignature => {
                Refusal::new(Reason::Expired, "expired token: its exp has passed")
            }
            ErrorKind::ImmatureSignature => Refusal::new(
                Reason::NotYetValid,
                "token not valid yet: its nbf is still to come",
            ),
            ErrorKind::InvalidIssuer | ErrorKind::MissingRequiredClaim(_)
                if is_claim(error, "iss") =>
            {
                Refusal::new(
                    Reason::Issuer,
                    format!(
                        "token from the wrong issuer: this server accepts {:?} only",
                        wanted(&self.issuer)
                    ),
                )
            }
            ErrorKind::InvalidAudience | ErrorKind::MissingRequiredClaim(_)
                if is_claim(error, "aud") =>
            {
                Refusal::new(
                    Reason::Audience,
                    format!(
                        "token for the wrong audience: this server is {:?}",
                        wanted(&self.audience)
                    ),
                )
            }
            ErrorKind::MissingRequiredClaim(claim) => {
                malformed(format!("it has no {claim} claim (a number)"))
            }
            ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm | ErrorKind::Crypto(_) => {
                Refusal::new(
                    Reason::Signature,
                    "wrongly signed token: its signature does not verify with the server's keys",
                )
            }
            _ => malformed("its claims are not a JSON object"),
        }
    }
}

/// Whether `error` is about `claim`: a wrong value, or none.
fn is_claim(error: &ErrorKind, claim: &str) -> bool {
    match error {
        ErrorKind::InvalidIssuer => claim == "iss",
        ErrorKind::InvalidAudience => claim == "aud",
        ErrorKind::MissingRequiredClaim(missing) => missing == claim,
        _ => false,
    }
}

fn malformed(why: impl std::fmt::Display) -> Refusal {
    Refusal::new(Reason::Malformed, format!("malformed token: {why}"))
}

/// The token of the call's one `authorization: Bearer <JWT>` header.
fn bearer_token(headers: &Metadata) -> Result<&str, Refusal> {
    let mut values = headers
        .iter()
        .filter(|(key, _)| *key == AUTHORIZATION)
        .map(|(_, value)| value);
    let Some(value) = values.next() else {
        return Err(Refusal::new(
            Reason::Missing,
            "missing token: this server requires `authorization: Bearer <JWT>` on every call",
        ));
    };
    if values.next().is_some() {
        return Err(malformed("more than one authorization header"));
    }
    let not_bearer = || malformed("the authorization header is not `Bearer <JWT>`");
    let value = std::str::from_utf8(value).map_err(|_| not_bearer())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(not_bearer)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(not_bearer());
    }
    Ok(token)
}

/// What a token's header says about its signature, read before any key is
/// tried: an algorithm this server accepts, and perhaps the key's id.
struct TokenHeader {
    algorithm: Algorithm,
    kid: Option<String>,
}

impl TokenHeader {
    fn read(token: &str) -> Result<TokenHeader, Refusal> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, _, _] = parts[..] else {
            return Err(malformed(
                "not a JWT (three base64url parts joined by dots)",
            ));
        };
        let header: Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or_else(|| malformed("its header is not base64url JSON"))?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("its header has no alg"))?;
        let algorithm = match alg.parse::<Algorithm>() {
            Ok(algorithm @ (Algorithm::RS256 | Algorithm::ES256)) => algorithm,
            Ok(other) => {
                return Err(Refusal::new(
                    Reason::Algorithm,
                    format!("wrongly signed token: {other:?} is not accepted, only {ACCEPTED}"),
                ))
            }
            Err(_) if alg.eq_ignore_ascii_case("none") => {
                return Err(Refusal::new(
                    Reason::Algorithm,
                    format!(
                    "wrongly signed token: it is unsigned (alg none), only {ACCEPTED} is accepted"
                ),
                ))
            }
            Err(_) => {
                return Err(Refusal::new(
                    Reason::Algorithm,
                    format!(
                        "wrongly signed token: an unknown algorithm, only {ACCEPTED} is accepted"
                    ),
                ))
            }
        };
        let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
        Ok(TokenHeader { algorithm, kid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grpcio::MetadataBuilder;

    fn headers(values: &[&str]) -> Metadata {
        let mut builder = MetadataBuilder::new();
        for value in values {
            builder.add_str(AUTHORIZATION, value).unwrap();
        }
        builder.build()
    }

    fn encoded(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn the_header_must_be_one_bearer_token() {
        let reason = |values: &[&str]| bearer_token(&headers(values)).unwrap_err().reason;
        assert_eq!(reason(&[]), Reason::Missing);
        for bad in [
            &["Basic abc"][..],
            &["Bearer"],
            &["Bearer  "],
            &["a.b.c"],
            &["Bearer a", "Bearer b"],
        ] {
            assert_eq!(reason(bad), Reason::Malformed, "{bad:?}");
        }
        assert_eq!(bearer_token(&headers(&["bearer a.b.c"])).unwrap(), "a.b.c");
    }

    #[test]
    fn only_rs256_and_es256_get_past_the_header() {
        let token = |header: &str| format!("{}.{}.sig", encoded(header), encoded("{}"));
        let read = |header: &str| TokenHeader::read(&token(header));
        let rs = read(r#"{"alg":"RS256","kid":"k"}"#).ok().unwrap();
        assert_eq!(
            (rs.algorithm, rs.kid.as_deref()),
            (Algorithm::RS256, Some("k"))
        );
        assert_eq!(
            read(r#"{"alg":"ES256"}"#).ok().unwrap().algorithm,
            Algorithm::ES256
        );
        for (header, said) in [
            (r#"{"alg":"none"}"#, "unsigned (alg none)"),
            (r#"{"alg":"HS256"}"#, "HS256 is not accepted"),
            (r#"{"alg":"RS512"}"#, "RS512 is not accepted"),
            (r#"{"alg":"XYZ"}"#, "an unknown algorithm"),
        ] {
            let refusal = read(header).err().unwrap();
            assert_eq!(refusal.reason, Reason::Algorithm, "{header}");
            assert!(
                refusal.message.contains(said),
                "{header}: {}",
                refusal.message
            );
        }
        for bad in ["x", "a.b", "a.b.c.d", "!!.e30.x"] {
            assert_eq!(
                TokenHeader::read(bad).err().unwrap().reason,
                Reason::Malformed,
                "{bad}"
            );
        }
        let no_alg = TokenHeader::read(&token("{}")).err().unwrap();
        assert!(no_alg.message.contains("no alg"), "{}", no_alg.message);
    }
}
