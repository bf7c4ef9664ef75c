//! Password hashing and verification with Argon2id (the crate's default parameters), run off
//! the async executor.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{IdentityError, Result};

/// Hashes a password into a PHC string.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| IdentityError::Internal(anyhow::anyhow!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| IdentityError::Internal(e.into()))?
}

/// Checks a password against a PHC string. With `None` it verifies against a fixed dummy
/// hash and returns false, so an unknown login costs as much time as a wrong password.
pub async fn verify(password: String, phc: Option<String>) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let phc = phc.as_deref().unwrap_or(DUMMY_HASH);
        let parsed = PasswordHash::new(phc)
            .map_err(|e| IdentityError::Internal(anyhow::anyhow!("stored hash unreadable: {e}")))?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && phc != DUMMY_HASH)
    })
    .await
    .map_err(|e| IdentityError::Internal(e.into()))?
}

/// Argon2id hash of a random string nobody knows, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$yhPmCT5jn7Pd5jv0m0/1Lx3f0Dd6V8tEv0b0VmPdZ9Q";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery".to_owned())
            .await
            .expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(!phc.contains("correct horse"));
        assert!(
            verify("correct horse battery".to_owned(), Some(phc.clone()))
                .await
                .expect("verify")
        );
        assert!(
            !verify("correct horse batterY".to_owned(), Some(phc))
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        assert!(!verify("anything".to_owned(), None).await.expect("verify"));
    }

    #[tokio::test]
    async fn two_hashes_of_one_password_differ() {
        let a = hash("same password".to_owned()).await.expect("hash");
        let b = hash("same password".to_owned()).await.expect("hash");
        assert_ne!(a, b, "salts differ");
    }
}
