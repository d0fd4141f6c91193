//! The secret key: signs tokens and, later, encrypts secrets at rest. Each use
//! gets its own key derived from it, so no two purposes share key material.

use std::fmt;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

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
        let path = data_dir.join("secret.key");
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            return SecretKey::from_hex(&text).with_context(|| format!("in {}", path.display()));
        }
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let key = SecretKey::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        writeln!(file, "{}", hex::encode(key.0))?;
        Ok(key)
    }

    fn mac(&self, purpose: &str) -> HmacSha256 {
        let mut derive = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length");
        derive.update(purpose.as_bytes());
        let subkey = derive.finalize().into_bytes();
        HmacSha256::new_from_slice(&subkey).expect("HMAC takes any key length")
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

/// A URL-safe random token of 32 bytes, for session cookies and the like.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
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
    fn the_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = SecretKey::load_or_create(dir.path()).expect("created");
        let second = SecretKey::load_or_create(dir.path()).expect("read");
        assert_eq!(first.0, second.0);
        assert!(!format!("{first:?}").contains(&hex::encode(first.0)));
    }
}
