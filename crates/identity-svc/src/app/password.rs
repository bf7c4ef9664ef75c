//! Password hashing and verification with Argon2id (the crate's default parameters), run off
//! the async executor, at most one per core at a time: a flood of logins queues (and is
//! turned away after a while) instead of exhausting CPU and memory.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{IdentityError, Result};

/// How long a hash waits for a free core before the call is turned away (503).
const QUEUE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// One permit per core: each Argon2 run holds 19 MiB and a core for tens of milliseconds.
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
});

/// Runs `work` on the blocking pool once a hashing permit is free.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let permit = tokio::time::timeout(QUEUE_LIMIT, HASHING.acquire())
        .await
        .map_err(|_| IdentityError::Busy)?
        .map_err(|e| IdentityError::Internal(e.into()))?;
    // The permit goes with the job: a caller that gives up does not free the core early.
    tokio::task::spawn_blocking(move || {
        let _held = permit;
        work()
    })
    .await
    .map_err(|e| IdentityError::Internal(e.into()))?
}

/// Hashes a password into a PHC string.
pub async fn hash(password: String) -> Result<String> {
    bounded(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| IdentityError::Internal(anyhow::anyhow!("hashing a password: {e}")))
    })
    .await
}

/// Checks a password against a PHC string. With `None` it verifies against a fixed dummy
/// hash and returns false, so an unknown login costs as much time as a wrong password.
pub async fn verify(password: String, phc: Option<String>) -> Result<bool> {
    bounded(move || {
        let phc = phc.as_deref().unwrap_or(DUMMY_HASH);
        let parsed = PasswordHash::new(phc)
            .map_err(|e| IdentityError::Internal(anyhow::anyhow!("stored hash unreadable: {e}")))?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && phc != DUMMY_HASH)
    })
    .await
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
