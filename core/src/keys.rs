//! The secret key: signs tokens and encrypts secrets at rest (the sealed
//! columns listed in `sealed`). Each use gets its own key derived from it, so
//! no two purposes share key material.

use std::fmt;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD_NO_PAD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::sealed::Purpose;

type HmacSha256 = Hmac<Sha256>;

/// 32 random bytes; `Debug` never shows them.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([hidden])")
    }
}

impl SecretKey {
    /// Parses 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> anyhow::Result<SecretKey> {
        let bytes = hex::decode(text.trim()).context("the secret key is not hexadecimal")?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the secret key must be 64 hexadecimal digits"))?;
        Ok(SecretKey(bytes))
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> SecretKey {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SecretKey(bytes)
    }

    /// Reads `secret.key` from the data folder, creating it (mode 0600) the
    /// first time.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<SecretKey> {
        let path = data_dir.join(FILE);
        if path.exists() {
            return SecretKey::read(&path);
        }
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let key = SecretKey::generate();
        key.write_new(&path)?;
        Ok(key)
    }

    /// Reads a key file (64 hexadecimal digits).
    pub fn read(path: &Path) -> anyhow::Result<SecretKey> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        SecretKey::from_hex(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Writes the key to a file that must not exist yet, readable by its
    /// owner only, and flushed to disk before this returns.
    pub fn write_new(&self, path: &Path) -> anyhow::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        writeln!(file, "{}", self.to_hex())?;
        file.sync_all()
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The key as 64 hexadecimal digits, for a key file or a backup; never
    /// for a log.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn mac(&self, purpose: &str) -> HmacSha256 {
        let mut derive =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        derive.update(purpose.as_bytes());
        let subkey = derive.finalize().into_bytes();
        <HmacSha256 as Mac>::new_from_slice(&subkey).expect("HMAC takes any key length")
    }

    /// A hex tag over `message` for one purpose.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> String {
        let mut mac = self.mac(purpose);
        mac.update(message);
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks a tag made by [`SecretKey::sign`] in constant time.
    pub fn verify(&self, purpose: &str, message: &[u8], tag: &str) -> bool {
        let Ok(tag) = hex::decode(tag) else {
            return false;
        };
        let mut mac = self.mac(purpose);
        mac.update(message);
        mac.verify_slice(&tag).is_ok()
    }
}

impl SecretKey {
    fn cipher(&self, purpose: Purpose) -> ChaCha20Poly1305 {
        let mut derive =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        derive.update(b"encrypt:");
        derive.update(purpose.name().as_bytes());
        ChaCha20Poly1305::new(&derive.finalize().into_bytes())
    }

    /// Encrypts a secret to store it (a PBX password, an API credential):
    /// `v1:` and the base64 of a random nonce and the sealed text. The
    /// purpose is bound in, so a value cannot be moved to another column.
    /// Purposes are made only in `sealed`, beside the list of the columns
    /// that hold sealed values (key rotation re-seals exactly those).
    pub fn encrypt(&self, purpose: Purpose, plaintext: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher(purpose)
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: purpose.name().as_bytes(),
                },
            )
            .expect("encryption in memory cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("v1:{}", BASE64.encode(bytes))
    }

    /// Opens what [`SecretKey::encrypt`] sealed for the same purpose.
    pub fn decrypt(&self, purpose: Purpose, stored: &str) -> anyhow::Result<String> {
        let encoded = stored
            .strip_prefix("v1:")
            .context("the stored secret has an unknown format")?;
        let bytes = BASE64
            .decode(encoded)
            .context("the stored secret is not base64")?;
        anyhow::ensure!(bytes.len() > 12, "the stored secret is too short");
        let (nonce, sealed) = bytes.split_at(12);
        let plain = self
            .cipher(purpose)
            .decrypt(
                nonce.into(),
                Payload {
                    msg: sealed,
                    aad: purpose.name().as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("the stored secret does not open with this key"))?;
        String::from_utf8(plain).context("the stored secret is not text")
    }
}

/// The key file's name in the data folder.
pub const FILE: &str = "secret.key";

/// A URL-safe random token of 32 bytes, for session cookies and the like.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether a token someone sent is the configured one, in time that
/// depends on neither (their SHA-256 digests are compared in constant time).
pub fn same_token(sent: &str, configured: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    Sha256::digest(sent.as_bytes())
        .ct_eq(&Sha256::digest(configured.as_bytes()))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_verify_only_for_the_same_key_purpose_and_message() {
        let key = SecretKey::generate();
        let tag = key.sign("csrf", b"abc");
        assert!(key.verify("csrf", b"abc", &tag));
        assert!(!key.verify("session", b"abc", &tag));
        assert!(!key.verify("csrf", b"abd", &tag));
        assert!(!SecretKey::generate().verify("csrf", b"abc", &tag));
        assert!(!key.verify("csrf", b"abc", "zz"));
    }

    #[test]
    fn secrets_open_only_with_the_same_key_and_purpose() {
        use crate::sealed::{PBX_CDR_SOURCE, PBX_GUI_PASSWORD};
        let key = SecretKey::generate();
        let sealed = key.encrypt(PBX_GUI_PASSWORD, "s3cret-Password");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("s3cret"));
        assert_ne!(
            sealed,
            key.encrypt(PBX_GUI_PASSWORD, "s3cret-Password"),
            "fresh nonce each time"
        );
        assert_eq!(
            key.decrypt(PBX_GUI_PASSWORD, &sealed).expect("opens"),
            "s3cret-Password"
        );
        assert!(key.decrypt(PBX_CDR_SOURCE, &sealed).is_err());
        assert!(SecretKey::generate()
            .decrypt(PBX_GUI_PASSWORD, &sealed)
            .is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(key.decrypt(PBX_GUI_PASSWORD, &tampered).is_err());
        assert!(key.decrypt(PBX_GUI_PASSWORD, "plain text").is_err());
    }

    #[test]
    fn a_sealed_value_made_before_purposes_were_typed_still_opens() {
        // Purposes are bound in by name: values stored before keep opening.
        let key = SecretKey::from_hex(&"ab".repeat(32)).expect("a key");
        let sealed = key.encrypt(crate::sealed::EMAIL_BODY, "hello");
        let mut derive = <HmacSha256 as Mac>::new_from_slice(&key.0).expect("any length");
        derive.update(b"encrypt:email.body");
        let cipher = ChaCha20Poly1305::new(&derive.finalize().into_bytes());
        let bytes = BASE64.decode(&sealed[3..]).expect("base64");
        let (nonce, body) = bytes.split_at(12);
        let plain = cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: body,
                    aad: b"email.body",
                },
            )
            .expect("opens as before");
        assert_eq!(plain, b"hello");
    }

    #[test]
    fn the_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = SecretKey::load_or_create(dir.path()).expect("created");
        let second = SecretKey::load_or_create(dir.path()).expect("read");
        assert_eq!(first.0, second.0);
        assert!(!format!("{first:?}").contains(&hex::encode(first.0)));
    }
}
