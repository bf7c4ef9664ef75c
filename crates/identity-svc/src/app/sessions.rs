//! Sessions: password login (throttled per account), refresh-token rotation with reuse
//! detection, logout.

use super::*;

impl Identity {
    /// Password login with a username or an email address.
    pub async fn login(&self, login: &str, password: &str) -> Result<IssuedSession> {
        let login = login.trim();
        let by = if login.contains('@') {
            store::users::By::Email(login)
        } else {
            store::users::By::Username(login)
        };
        let found = if login.is_empty() || login.len() > 254 {
            None
        } else {
            store::users::find(&self.db, by).await?
        };
        // Wrong passwords are counted per account (per login name when there is no such
        // account, so both behave alike); past a few, no password is checked for a while.
        let throttle_key = match &found {
            Some(user) => format!("user:{}", user.id),
            None => format!("login:{}", secret::digest(&login.to_ascii_lowercase())),
        };
        self.login_allowed(&throttle_key).await?;
        // One password check at a time per account here, so a burst of guesses cannot all
        // pass the check above before the first failures are counted.
        let _checking = self.check_alone(&throttle_key)?;
        let phc = found.as_ref().map(|u| u.password_hash.clone());
        let password_ok =
            password.len() <= 1024 && password::verify(password.to_owned(), phc).await?;
        let user = match found {
            Some(user) if password_ok => user,
            _ => {
                self.login_failed(&throttle_key).await?;
                return Err(IdentityError::Unauthenticated);
            }
        };
        self.login_succeeded(&throttle_key).await?;
        let at = now();
        let session_id = uuid::Uuid::now_v7().to_string();
        let refresh = secret::generate(REFRESH_PREFIX);
        let txn = self.db.begin().await?;
        let expires_at = at + self.refresh_ttl_delta();
        let digest = secret::digest(&refresh);
        store::sessions::open(&txn, &session_id, user.id, at, expires_at, digest).await?;
        txn.commit().await?;
        self.issue(user, &session_id, refresh, at)
    }

    /// Claims the one password check an account may have running here at a time.
    fn check_alone(&self, key: &str) -> Result<CheckingGuard<'_>> {
        let mut checking = self
            .checking
            .lock()
            .map_err(|_| IdentityError::Internal(anyhow::anyhow!("login checks poisoned")))?;
        if !checking.insert(key.to_owned()) {
            return Err(IdentityError::TooManyAttempts {
                retry_after: Duration::from_secs(1),
            });
        }
        Ok(CheckingGuard(self, key.to_owned()))
    }

    /// `TooManyAttempts` while a login is blocked after repeated wrong passwords.
    async fn login_allowed(&self, key: &str) -> Result<()> {
        let at = now();
        match store::throttle::blocked_until(&self.db, key).await? {
            Some(until) if until > at => Err(IdentityError::TooManyAttempts {
                retry_after: (until - at).to_std().unwrap_or(Duration::from_secs(1)),
            }),
            _ => Ok(()),
        }
    }

    /// Counts a wrong password; from the [`FREE_LOGIN_ATTEMPTS`]th on, the login is blocked
    /// for a time that doubles with each further one, up to [`MAX_LOGIN_BLOCK`].
    async fn login_failed(&self, key: &str) -> Result<()> {
        let at = now();
        let failed = store::throttle::count_failure(&self.db, key, at).await?;
        let blocked_until = login_block(failed).map(|block| at + block);
        if let Some(until) = blocked_until {
            store::throttle::block(&self.db, key, until).await?;
        }
        // Counters nobody has touched for a day are forgotten.
        store::throttle::forget_older(&self.db, at - chrono::TimeDelta::days(1)).await?;
        if blocked_until.is_some() {
            tracing::warn!(failed, "login blocked after repeated wrong passwords");
        }
        Ok(())
    }

    async fn login_succeeded(&self, key: &str) -> Result<()> {
        Ok(store::throttle::clear(&self.db, key).await?)
    }

    /// Rotates a refresh token. A token used twice means it leaked: its whole session is
    /// revoked.
    pub async fn refresh(&self, presented: &str) -> Result<IssuedSession> {
        let Some(row) =
            store::sessions::refresh_by_digest(&self.db, secret::digest(presented)).await?
        else {
            return Err(IdentityError::Unauthenticated);
        };
        let at = now();
        let session = self.live_session(&row.session_id, at).await?;
        let replacement = secret::generate(REFRESH_PREFIX);
        let txn = self.db.begin().await?;
        if !store::sessions::use_refresh(&txn, row.id, at).await? {
            txn.rollback().await?;
            tracing::warn!(session = %session.id, "refresh token reused; revoking its session");
            self.revoke_session(&session.id, at).await?;
            return Err(IdentityError::SessionRevoked {
                user_id: session.user_id,
            });
        }
        store::sessions::add_refresh(&txn, &session.id, secret::digest(&replacement), at).await?;
        txn.commit().await?;
        let user = store::users::by_id(&self.db, session.user_id)
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        self.issue(user, &session.id, replacement, at)
    }

    /// Revokes the session an access token belongs to, or with `everywhere` every session
    /// of its user (each device's refresh token stops working, and each access token at its
    /// next check).
    pub async fn logout(&self, access_token: &str, everywhere: bool) -> Result<()> {
        let claims = self
            .signer
            .verify(access_token)
            .ok_or(IdentityError::Unauthenticated)?;
        let at = now();
        let session = self.live_session(&claims.sid, at).await?;
        if everywhere {
            let ended = store::sessions::revoke_user(&self.db, session.user_id, at).await?;
            tracing::info!(
                user_id = session.user_id,
                sessions = ended,
                "logged out everywhere"
            );
            return Ok(());
        }
        self.revoke_session(&session.id, at).await
    }

    fn issue(
        &self,
        user: user::Model,
        session_id: &str,
        refresh: String,
        at: DateTime<Utc>,
    ) -> Result<IssuedSession> {
        let access_token = self
            .signer
            .issue(user.id, session_id, at.timestamp())
            .map_err(IdentityError::Internal)?;
        Ok(IssuedSession {
            access_token,
            access_ttl: self.signer.ttl(),
            refresh_token: refresh,
            refresh_ttl: self.refresh_ttl,
            user: user.into(),
        })
    }

    fn refresh_ttl_delta(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::from_std(self.refresh_ttl).unwrap_or(chrono::TimeDelta::days(30))
    }

    pub(super) async fn live_session(&self, id: &str, at: DateTime<Utc>) -> Result<session::Model> {
        match store::sessions::find(&self.db, id).await? {
            Some(s) if s.revoked_at.is_none() && s.expires_at > at => Ok(s),
            _ => Err(IdentityError::Unauthenticated),
        }
    }

    async fn revoke_session(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        Ok(store::sessions::revoke(&self.db, id, at).await?)
    }
}
