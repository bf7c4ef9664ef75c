//! Secrets for long-lived credentials and refresh tokens: generation, storage digests and
//! constant-time comparison.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefixes make a leaked secret recognisable to people and secret scanners.
pub const SKYPORT_KEY_PREFIX: &str = "sk_";
pub const VPSORG_TOKEN_PREFIX: &str = "vpt_";
pub const CVM_PUBLIC_PREFIX: &str = "cvmpub_";
pub const CVM_PRIVATE_PREFIX: &str = "cvmpriv_";
pub const REFRESH_PREFIX: &str = "rt_";

/// A new random secret: the prefix and 256 bits of randomness, base64url-encoded.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The stored form of a high-entropy secret: SHA-256, hex. (Passwords use Argon2 instead; a
/// 256-bit random secret needs no slow hash.)
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` matches the stored digest, compared in constant time.
pub fn matches(secret: &str, stored_digest: &str) -> bool {
    let computed = digest(secret);
    computed.as_bytes().ct_eq(stored_digest.as_bytes()).into()
}

/// A short, non-secret beginning of a secret for listings: the prefix and four characters.
pub fn hint(secret: &str) -> String {
    let prefix_chars = secret.find('_').map_or(0, |i| secret[..=i].chars().count());
    let visible: String = secret.chars().take(prefix_chars + 4).collect();
    format!("{visible}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_prefixed_and_unique() {
        let a = generate(VPSORG_TOKEN_PREFIX);
        let b = generate(VPSORG_TOKEN_PREFIX);
        assert!(a.starts_with("vpt_"));
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, b);
    }

    #[test]
    fn digests_match_only_their_secret() {
        let secret = generate(SKYPORT_KEY_PREFIX);
        let stored = digest(&secret);
        assert!(!stored.contains(&secret));
        assert!(matches(&secret, &stored));
        assert!(!matches(&format!("{secret}x"), &stored));
        assert!(!matches("", &stored));
    }

    #[test]
    fn hints_reveal_only_the_start() {
        assert_eq!(hint("vpt_abcdefgh"), "vpt_abcd…");
        assert_eq!(hint("xy"), "xy…");
        assert_eq!(hint("sk_é漢字字字"), "sk_é漢字字…");
    }
}
