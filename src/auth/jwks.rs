//! The keys tokens are verified with: a JWKS file (RFC 7517), as an OIDC
//! provider publishes one at its `jwks_uri`. Only signing keys of the two
//! accepted algorithms are kept, RSA (RS256) and EC P-256 (ES256); others
//! (encryption keys, other curves and algorithms) are passed over, so a
//! provider's whole JWKS can be used as it is. Providers rotate their keys:
//! the file is read again when it changes (checked every [`RELOAD_CHECK`]),
//! so a job that refreshes it brings new keys in and old ones out.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use log::{debug, info, warn};
use serde_json::Value;

/// A key a token may be signed with.
pub(crate) struct VerificationKey {
    /// Its `kid`, which a token's header names to pick it.
    pub(crate) kid: Option<String>,
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

/// The usable keys of a JWKS, at least one.
pub(crate) struct Jwks(Vec<VerificationKey>);

impl Jwks {
    /// The keys a token signed with `algorithm` may have used: the one its
    /// header names (`kid`), or every key of that algorithm if it names none.
    pub(crate) fn candidates<'a>(
        &'a self,
        algorithm: Algorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a VerificationKey> + 'a {
        self.0.iter().filter(move |key| {
            key.algorithm == algorithm && kid.is_none_or(|kid| key.kid.as_deref() == Some(kid))
        })
    }
}

/// How often the file is looked at for a change (its modification time and size).
pub const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// The JWKS file the server verifies with, read again when it changes.
pub(crate) struct JwksFile {
    path: PathBuf,
    current: RwLock<Arc<Jwks>>,
    check: Mutex<Check>,
}

/// When the file was last looked at, and what it was then.
struct Check {
    at: Instant,
    version: Option<(SystemTime, u64)>,
}

impl JwksFile {
    /// Reads the file at `path`, which must hold at least one usable key.
    pub(crate) fn open(path: &Path) -> Result<JwksFile, String> {
        let version = version(path);
        Ok(JwksFile {
            path: path.to_owned(),
            current: RwLock::new(Arc::new(load(path)?)),
            check: Mutex::new(Check {
                at: Instant::now(),
                version,
            }),
        })
    }

    /// The keys now. Every [`RELOAD_CHECK`] one call looks at the file (the
    /// others do not wait for it) and reads it again if it changed; a file
    /// that cannot be used then leaves the keys as they were.
    pub(crate) fn keys(&self) -> Arc<Jwks> {
        if let Some(mut check) = self.check.try_lock() {
            if check.at.elapsed() >= RELOAD_CHECK {
                check.at = Instant::now();
                let version = version(&self.path);
                if version.is_some() && version != check.version {
                    check.version = version;
                    match load(&self.path) {
                        Ok(keys) => {
                            info!("{} changed: {} keys now", self.path.display(), keys.0.len());
                            *self.current.write().unwrap_or_else(|e| e.into_inner()) =
                                Arc::new(keys);
                        }
                        Err(e) => warn!("{e}; the keys read before stay in use"),
                    }
                }
            }
        }
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The file's modification time and size, which change when it is rewritten.
fn version(path: &Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

/// Reads the JWKS file at `path`, or says in one line why it cannot be used.
pub(crate) fn load(path: &Path) -> Result<Jwks, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --auth-jwks {}: {e}", path.display()))?;
    parse(&text).map_err(|why| format!("--auth-jwks {}: {why}", path.display()))
}

fn parse(text: &str) -> Result<Jwks, String> {
    let set: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let keys = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("not a JWKS: no \"keys\" list")?;
    let usable: Vec<VerificationKey> = keys.iter().filter_map(verification_key).collect();
    if usable.is_empty() {
        return Err(format!(
            "none of its {} keys is an RS256 or ES256 signing key",
            keys.len()
        ));
    }
    Ok(Jwks(usable))
}

/// `key` if it is a signing key of an accepted algorithm.
fn verification_key(key: &Value) -> Option<VerificationKey> {
    let jwk: Jwk = match serde_json::from_value(key.clone()) {
        Ok(jwk) => jwk,
        Err(e) => {
            debug!("JWKS: a key passed over: {e}");
            return None;
        }
    };
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let algorithm = match (&jwk.algorithm, &jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(VerificationKey {
        kid: jwk.common.key_id,
        algorithm,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Public halves only: a 2048-bit RSA modulus is not needed to parse, but
    // ring checks it at verification, which the integration tests exercise.
    const RSA: &str = r#"{"kty":"RSA","kid":"r1","use":"sig","alg":"RS256","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}"#;
    const EC: &str = r#"{"kty":"EC","kid":"e1","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

    #[test]
    fn signing_keys_of_the_accepted_algorithms_are_kept_by_kid() {
        let others = [
            r#"{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"RSA","kid":"ps","alg":"PS256","n":"AQAB","e":"AQAB"}"#,
            r#"{"kty":"EC","kid":"p384","crv":"P-384","x":"AQAB","y":"AQAB"}"#,
            r#"{"kty":"oct","kid":"secret","k":"c2VjcmV0"}"#,
            r#"{"kty":"unheard-of"}"#,
        ];
        let text = format!(r#"{{"keys":[{RSA},{EC},{}]}}"#, others.join(","));
        let jwks = parse(&text).unwrap();
        let kids = |algorithm, kid| {
            jwks.candidates(algorithm, kid)
                .map(|key| key.kid.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(kids(Algorithm::RS256, None), ["r1"]);
        assert_eq!(kids(Algorithm::ES256, None), ["e1"]);
        assert_eq!(kids(Algorithm::ES256, Some("e1")), ["e1"]);
        assert!(kids(Algorithm::ES256, Some("r1")).is_empty());
        assert!(kids(Algorithm::HS256, None).is_empty());
    }

    #[test]
    fn a_file_without_usable_keys_says_why() {
        assert!(parse("nonsense").err().unwrap().starts_with("not JSON"));
        assert!(parse("{}").err().unwrap().contains("no \"keys\" list"));
        let none = parse(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#)
            .err()
            .unwrap();
        assert_eq!(none, "none of its 1 keys is an RS256 or ES256 signing key");
    }
}
