//! Secrets at rest (node credentials, root passwords): XChaCha20-Poly1305 with a random nonce per value, under a key
//! from configuration. Stored as `v1:` + base64(nonce ‖ ciphertext).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore as _;

const VERSION: &str = "v1:";

#[derive(Clone)]
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    /// A previous key, still able to open what it sealed (never used to seal).
    previous: Option<XChaCha20Poly1305>,
}

impl Sealer {
    /// From a base64-encoded 32-byte key.
    pub fn from_base64(key: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| anyhow::anyhow!("credentials_key must be base64"))?;
        anyhow::ensure!(
            bytes.len() == 32,
            "credentials_key must be 32 bytes (base64 of 32 random bytes)"
        );
        Ok(Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&bytes)),
            previous: None,
        })
    }

    /// Also opens values sealed under `key` (base64 of 32 bytes), as after a change of key.
    pub fn with_previous(mut self, key: &str) -> anyhow::Result<Self> {
        self.previous = Some(Self::from_base64(key)?.cipher);
        Ok(self)
    }

    pub fn seal(&self, plaintext: &[u8]) -> anyhow::Result<String> {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            .map_err(|_| anyhow::anyhow!("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(format!("{VERSION}{}", STANDARD.encode(out)))
    }

    pub fn open(&self, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let body = sealed
            .strip_prefix(VERSION)
            .ok_or_else(|| anyhow::anyhow!("unknown sealed format"))?;
        let bytes = STANDARD.decode(body)?;
        anyhow::ensure!(bytes.len() > 24, "sealed value too short");
        let (nonce, ciphertext) = bytes.split_at(24);
        let nonce = XNonce::from_slice(nonce);
        self.cipher
            .decrypt(nonce, ciphertext)
            .or_else(|e| match &self.previous {
                Some(previous) => previous.decrypt(nonce, ciphertext),
                None => Err(e),
            })
            .map_err(|_| anyhow::anyhow!("cannot decrypt a sealed value: wrong key?"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_key_still_opens_what_it_sealed() {
        let old_key = "b2xkLWtleS1vbGQta2V5LW9sZC1rZXktb2xkLWtleTE=";
        let new_key = "bmV3LWtleS1uZXcta2V5LW5ldy1rZXktbmV3LWtleTE=";
        let sealed = Sealer::from_base64(old_key)
            .expect("key")
            .seal(b"kept")
            .expect("seal");
        let plain = Sealer::from_base64(new_key).expect("key");
        assert!(plain.open(&sealed).is_err());
        let both = plain.with_previous(old_key).expect("previous");
        assert_eq!(both.open(&sealed).expect("open"), b"kept");
        let fresh = both.seal(b"new").expect("seal");
        assert!(
            Sealer::from_base64(old_key)
                .expect("key")
                .open(&fresh)
                .is_err(),
            "sealed with the new key"
        );
    }

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn sealed_values_open_with_their_key_only() {
        let sealer = Sealer::from_base64(&key(7)).expect("key");
        let sealed = sealer
            .seal(b"PVEAPIToken=root@pam!ci=secret")
            .expect("seal");
        assert!(sealed.starts_with("v1:") && !sealed.contains("secret"));
        assert_eq!(
            sealer.open(&sealed).expect("open"),
            b"PVEAPIToken=root@pam!ci=secret"
        );
        assert_ne!(
            sealed,
            sealer
                .seal(b"PVEAPIToken=root@pam!ci=secret")
                .expect("seal"),
            "fresh nonce"
        );
        let other = Sealer::from_base64(&key(8)).expect("key");
        assert!(other.open(&sealed).is_err());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(sealer.open(&tampered).is_err());
    }

    #[test]
    fn keys_must_be_32_bytes() {
        assert!(Sealer::from_base64(&STANDARD.encode([1u8; 16])).is_err());
        assert!(Sealer::from_base64("not base64!").is_err());
    }
}
