//! RSA keys as the providers hand them out, and SHA256withRSA (PKCS#1 v1.5) — the signature
//! of WeChat Pay v3 (`WECHATPAY2-SHA256-RSA2048`) and of Alipay's `RSA2`.
//!
//! Keys are read in every form the providers' tools write: PEM (`PRIVATE KEY` PKCS#8 as
//! WeChat's `apiclient_key.pem`, `RSA PRIVATE KEY` PKCS#1, `PUBLIC KEY` SPKI, `RSA PUBLIC
//! KEY`), or the bare base64 of the DER that Alipay's key tool prints.
//!
//! The price: the `rsa` crate's private-key operation is not constant-time (RUSTSEC-2023-0071,
//! the Marvin attack, which needs many timed decryptions or signatures of chosen input; we
//! sign only our own messages, with fresh nonces, and decrypt nothing: the one encryption,
//! RSA-OAEP of a payee's name for WeChat Pay ([`PublicKey::encrypt_oaep_sha1`]), uses the
//! public key).

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs1v15::{Signature, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

/// A private key that signs SHA256withRSA.
#[derive(Clone)]
pub struct PrivateKey(SigningKey<Sha256>);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(***)")
    }
}

/// A public key that verifies SHA256withRSA.
#[derive(Clone, Debug)]
pub struct PublicKey(VerifyingKey<Sha256>);

impl PrivateKey {
    pub fn new(key: RsaPrivateKey) -> PrivateKey {
        PrivateKey(SigningKey::new(key))
    }

    /// Reads a PEM (PKCS#8 or PKCS#1) or bare base64 DER private key.
    pub fn parse(text: &str) -> anyhow::Result<PrivateKey> {
        let text = text.trim();
        let key = if text.starts_with("-----BEGIN") {
            RsaPrivateKey::from_pkcs8_pem(text)
                .or_else(|_| RsaPrivateKey::from_pkcs1_pem(text))
                .context("not an RSA private key PEM (PKCS#8 or PKCS#1)")?
        } else {
            let der = bare_der(text)?;
            RsaPrivateKey::from_pkcs8_der(&der)
                .or_else(|_| RsaPrivateKey::from_pkcs1_der(&der))
                .context("not an RSA private key (PKCS#8 or PKCS#1 DER in base64)")?
        };
        check_size(rsa::traits::PublicKeyParts::size(&key))?;
        Ok(PrivateKey::new(key))
    }

    /// The base64 SHA256withRSA signature of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        let signature: Signature = self.0.sign(message);
        B64.encode(signature.to_bytes())
    }
}

impl PublicKey {
    pub fn new(key: RsaPublicKey) -> PublicKey {
        PublicKey(VerifyingKey::new(key))
    }

    /// `plaintext` encrypted with RSA-OAEP (SHA-1, MGF1 with SHA-1), base64: how WeChat Pay
    /// v3 wants sensitive fields of a request (`RSA/ECB/OAEPWithSHA-1AndMGF1Padding` with the
    /// WeChat Pay public key that `Wechatpay-Serial` names). Randomised: two encryptions of
    /// one text differ.
    pub fn encrypt_oaep_sha1(&self, plaintext: &[u8]) -> anyhow::Result<String> {
        let key: &RsaPublicKey = self.0.as_ref();
        let sealed = key
            .encrypt(
                &mut rsa::rand_core::OsRng,
                rsa::Oaep::new::<sha1::Sha1>(),
                plaintext,
            )
            .context("RSA-OAEP encryption")?;
        Ok(B64.encode(sealed))
    }

    /// Reads a PEM (SPKI or PKCS#1) or bare base64 DER public key.
    pub fn parse(text: &str) -> anyhow::Result<PublicKey> {
        let text = text.trim();
        let key = if text.starts_with("-----BEGIN") {
            RsaPublicKey::from_public_key_pem(text)
                .or_else(|_| RsaPublicKey::from_pkcs1_pem(text))
                .context("not an RSA public key PEM (SPKI or PKCS#1)")?
        } else {
            let der = bare_der(text)?;
            RsaPublicKey::from_public_key_der(&der)
                .or_else(|_| RsaPublicKey::from_pkcs1_der(&der))
                .context("not an RSA public key (SPKI or PKCS#1 DER in base64)")?
        };
        check_size(rsa::traits::PublicKeyParts::size(&key))?;
        Ok(PublicKey::new(key))
    }

    /// Whether `signature` (base64) is this key's SHA256withRSA signature of `message`.
    /// Anything unreadable is simply not a valid signature.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        let Ok(bytes) = B64.decode(signature.trim()) else {
            return false;
        };
        let Ok(signature) = Signature::try_from(bytes.as_slice()) else {
            return false;
        };
        self.0.verify(message, &signature).is_ok()
    }
}

fn bare_der(text: &str) -> anyhow::Result<Vec<u8>> {
    let compact: String = text.split_whitespace().collect();
    B64.decode(compact)
        .context("neither a PEM nor base64 DER key")
}

/// The providers use 2048-bit keys; refuse toys (and absurd sizes) early.
fn check_size(bytes: usize) -> anyhow::Result<()> {
    if !(256..=512).contains(&bytes) {
        bail!(
            "RSA keys of 2048 to 4096 bits are accepted, this one has {} bits",
            bytes * 8
        );
    }
    Ok(())
}

/// 32 hex digits of OS randomness: a request nonce.
pub fn nonce() -> String {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    // The OS generator failing is the machine's failure; an all-zero nonce would only be
    // a repeated nonce, which the provider refuses.
    let _ = rand::rngs::OsRng.try_fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

    /// A 2048-bit key pair, made once per test binary (generation takes a while unoptimized).
    pub(crate) fn pair() -> &'static (RsaPrivateKey, RsaPublicKey) {
        static PAIR: std::sync::OnceLock<(RsaPrivateKey, RsaPublicKey)> =
            std::sync::OnceLock::new();
        PAIR.get_or_init(|| {
            let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("keygen");
            let public = key.to_public_key();
            (key, public)
        })
    }

    #[test]
    fn pem_and_bare_base64_keys_sign_and_verify() {
        let (key, public) = pair();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let private = PrivateKey::parse(&pem).unwrap();
        let bare: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let private_bare = PrivateKey::parse(&bare).unwrap();
        let public_pem = public.to_public_key_pem(LineEnding::LF).unwrap();
        let verifier = PublicKey::parse(&public_pem).unwrap();
        let sig = private.sign(b"message");
        assert_eq!(
            sig,
            private_bare.sign(b"message"),
            "PKCS#1 v1.5 is deterministic"
        );
        assert!(verifier.verify(b"message", &sig));
        assert!(!verifier.verify(b"messagE", &sig));
        assert!(!verifier.verify(b"message", "not base64!"));
        assert!(!verifier.verify(b"message", &B64.encode([0u8; 256])));
    }

    #[test]
    fn garbage_and_small_keys_are_refused() {
        assert!(PrivateKey::parse("hello").is_err());
        assert!(
            PublicKey::parse("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err()
        );
        let small = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let pem = small.to_pkcs8_pem(LineEnding::LF).unwrap();
        let err = PrivateKey::parse(&pem).unwrap_err().to_string();
        assert!(err.contains("1024"), "{err}");
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 32);
    }
}
