"""A token issuer, as an OIDC provider is one, for the tests and the docs:
signing keys, the public JWKS a server verifies with, and signed JWTs
(PyJWT on `cryptography`, not the Rust crate that verifies them). Not part
of the lab.

    python tokens.py keys DIR
        DIR/rs256.pem (RSA 2048, kid rs256-1), DIR/es256.pem (EC P-256, kid
        es256-1), their public halves DIR/rs256.pub.pem and DIR/es256.pub.pem,
        and DIR/jwks.json with both public keys.
    python tokens.py sign KEY.pem ALG KID CLAIMS_JSON
        One token on stdout, signed with KEY.pem (RS256 or ES256); the
        claims as given, so a test says exp and nbf itself.
"""
import json
import os
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

KEYS = {
    # name: (kid, algorithm, make a private key, PyJWT's JWK writer)
    "rs256": ("rs256-1", "RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), RSAAlgorithm),
    "es256": ("es256-1", "ES256", lambda: ec.generate_private_key(ec.SECP256R1()), ECAlgorithm),
}


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def keys(directory):
    os.makedirs(directory, exist_ok=True)
    jwks = []
    for name, (kid, alg, generate, writer) in KEYS.items():
        key = generate()
        write(os.path.join(directory, f"{name}.pem"), key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        public = key.public_key()
        write(os.path.join(directory, f"{name}.pub.pem"), public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        jwk = writer.to_jwk(public, as_dict=True)
        jwk.update({"kid": kid, "alg": alg, "use": "sig"})
        jwks.append(jwk)
    write(os.path.join(directory, "jwks.json"), json.dumps({"keys": jwks}, indent=2).encode())


def sign(key_path, alg, kid, claims):
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    print(jwt.encode(json.loads(claims), key, algorithm=alg, headers={"kid": kid}))


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["keys", directory]:
            keys(directory)
        case ["sign", key_path, alg, kid, claims]:
            sign(key_path, alg, kid, claims)
        case _:
            sys.exit(__doc__)
