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

    /// The sealer a service's configuration asks for: none without a key; an error for a
    /// previous key without a current one.
    pub fn configured(
        key: Option<&secrecy::SecretString>,
        previous: Option<&secrecy::SecretString>,
    ) -> anyhow::Result<Option<Self>> {
        use secrecy::ExposeSecret as _;
        match (key, previous) {
            (None, None) => Ok(None),
            (None, Some(_)) => anyhow::bail!("a previous key is set but no current key"),
            (Some(key), None) => Self::from_base64(key.expose_secret()).map(Some),
            (Some(key), Some(previous)) => Self::from_base64(key.expose_secret())?
                .with_previous(previous.expose_secret())
                .map(Some),
        }
    }

    /// Whether a previous key is configured (values may need sealing again).
    pub fn has_previous(&self) -> bool {
        self.previous.is_some()
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
        let (nonce, ciphertext) = parts(sealed)?;
        self.decrypt(&nonce, &ciphertext)
    }

    /// The value sealed again under the current key if only the previous key opens it;
    /// `None` when the current key already does.
    pub fn reseal(&self, sealed: &str) -> anyhow::Result<Option<String>> {
        let (nonce, ciphertext) = parts(sealed)?;
        if self.cipher.decrypt(&nonce, ciphertext.as_slice()).is_ok() {
            return Ok(None);
        }
        let plaintext = self.decrypt(&nonce, &ciphertext)?;
        self.seal(&plaintext).map(Some)
    }

    /// Opens with the current key, or else the previous one.
    fn decrypt(&self, nonce: &XNonce, ciphertext: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.cipher
            .decrypt(nonce, ciphertext)
            .or_else(|e| match &self.previous {
                Some(previous) => previous.decrypt(nonce, ciphertext),
                None => Err(e),
            })
            .map_err(|_| anyhow::anyhow!("cannot decrypt a sealed value: wrong key?"))
    }
}

/// The nonce and the ciphertext of a sealed value.
fn parts(sealed: &str) -> anyhow::Result<(XNonce, Vec<u8>)> {
    let body = sealed
        .strip_prefix(VERSION)
        .ok_or_else(|| anyhow::anyhow!("unknown sealed format"))?;
    let mut bytes = STANDARD.decode(body)?;
    anyhow::ensure!(bytes.len() > 24, "sealed value too short");
    let ciphertext = bytes.split_off(24);
    Ok((*XNonce::from_slice(&bytes), ciphertext))
}

/// Seals again, under the current key, every value of `table.column` that only the previous
/// key opens (rows keyed by the integer `key`); the number changed. Services run it at start
/// when a previous key is configured, so that key can be dropped afterwards. A row changed
/// meanwhile (by another replica) is left as it is: compare-and-set.
pub async fn reseal_column(
    db: &sea_orm::DatabaseConnection,
    table: &str,
    key: &str,
    column: &str,
    sealer: &Sealer,
) -> anyhow::Result<usize> {
    use sea_orm::ConnectionTrait as _;
    use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Query};

    let select = Query::select()
        .column(Alias::new(key))
        .column(Alias::new(column))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new(column)).is_not_null())
        .to_owned();
    let mut changed = 0;
    for row in db.query_all(&select).await? {
        let id: i64 = row.try_get("", key)?;
        let sealed: String = row.try_get("", column)?;
        let Some(resealed) = sealer
            .reseal(&sealed)
            .map_err(|e| anyhow::anyhow!("{table}.{column} of row {id}: {e}"))?
        else {
            continue;
        };
        let update = Query::update()
            .table(Alias::new(table))
            .value(Alias::new(column), resealed)
            .and_where(Expr::col(Alias::new(key)).eq(id))
            .and_where(Expr::col(Alias::new(column)).eq(sealed))
            .to_owned();
        changed += usize::from(db.execute(&update).await?.rows_affected() > 0);
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_previous_key_sealed_is_sealed_again() {
        let old_key = STANDARD.encode([1u8; 32]);
        let new_key = STANDARD.encode([2u8; 32]);
        let old = Sealer::from_base64(&old_key).expect("old");
        let both = Sealer::from_base64(&new_key)
            .expect("new")
            .with_previous(&old_key)
            .expect("previous");
        let sealed_old = old.seal(b"hunter2").expect("seal");
        let sealed_new = both.seal(b"swordfish").expect("seal");
        assert_eq!(both.reseal(&sealed_new).expect("reseal"), None);
        let resealed = both
            .reseal(&sealed_old)
            .expect("reseal")
            .expect("sealed again");
        let only_new = Sealer::from_base64(&new_key).expect("new");
        assert_eq!(only_new.open(&resealed).expect("open"), b"hunter2");
        assert!(only_new.open(&sealed_old).is_err());
        assert!(only_new.reseal(&sealed_old).is_err(), "no key opens it");
    }

    #[tokio::test]
    async fn a_column_is_sealed_again_row_by_row() {
        use sea_orm::ConnectionTrait as _;
        let old_key = STANDARD.encode([3u8; 32]);
        let new_key = STANDARD.encode([4u8; 32]);
        let old = Sealer::from_base64(&old_key).expect("old");
        let both = Sealer::from_base64(&new_key)
            .expect("new")
            .with_previous(&old_key)
            .expect("previous");
        let db = sea_orm::Database::connect("sqlite::memory:")
            .await
            .expect("sqlite");
        db.execute_unprepared("CREATE TABLE nodes (id INTEGER PRIMARY KEY, credentials TEXT)")
            .await
            .expect("table");
        let rows = [
            (1, Some(old.seal(b"one").expect("seal"))),
            (2, Some(both.seal(b"two").expect("seal"))),
            (3, None),
        ];
        for (id, value) in &rows {
            let value = value
                .as_deref()
                .map_or("NULL".to_owned(), |v| format!("'{v}'"));
            db.execute_unprepared(&format!("INSERT INTO nodes VALUES ({id}, {value})"))
                .await
                .expect("row");
        }
        let changed = reseal_column(&db, "nodes", "id", "credentials", &both)
            .await
            .expect("reseal");
        assert_eq!(changed, 1, "only the row the previous key sealed");
        let again = reseal_column(&db, "nodes", "id", "credentials", &both)
            .await
            .expect("reseal");
        assert_eq!(again, 0, "nothing is left to seal again");
        let only_new = Sealer::from_base64(&new_key).expect("new");
        for (id, plain) in [(1, b"one"), (2, b"two")] {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    format!("SELECT credentials FROM nodes WHERE id = {id}"),
                ))
                .await
                .expect("select")
                .expect("row");
            let sealed: String = row.try_get("", "credentials").expect("value");
            assert_eq!(only_new.open(&sealed).expect("opens"), plain);
        }
    }

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
