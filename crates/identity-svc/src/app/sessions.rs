//! Sessions: password login (throttled per account), refresh-token rotation with reuse
//! detection, logout.

use super::*;

impl Identity {
    /// Password login with a username or an email address.
    pub async fn login(&self, login: &str, password: &str) -> Result<IssuedSession> {
        let login = login.trim();
        let filter = if login.contains('@') {
            user::Column::Email.eq(login.to_ascii_lowercase())
        } else {
            user::Column::Username.eq(login)
        };
        let found = if login.is_empty() || login.len() > 254 {
            None
        } else {
            user::Entity::find().filter(filter).one(&self.db).await?
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
        session::ActiveModel {
            id: Set(session_id.clone()),
            user_id: Set(user.id),
            created_at: Set(at),
            expires_at: Set(at + self.refresh_ttl_delta()),
            revoked_at: Set(None),
        }
        .insert(&txn)
        .await?;
        insert_refresh_token(&txn, &session_id, &refresh, at).await?;
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
        let row = login_throttle::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?;
        let at = now();
        match row.and_then(|r| r.blocked_until) {
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
        // Counted in the database itself (`failed + 1`), so replicas never lose a count.
        login_throttle::Entity::insert(login_throttle::ActiveModel {
            key: Set(key.to_owned()),
            failed: Set(1),
            blocked_until: Set(None),
            updated_at: Set(at),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(login_throttle::Column::Key)
                .value(
                    login_throttle::Column::Failed,
                    sea_orm::sea_query::ExprTrait::add(
                        Expr::col((login_throttle::Entity, login_throttle::Column::Failed)),
                        1,
                    ),
                )
                .value(login_throttle::Column::UpdatedAt, Expr::value(at))
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        let failed = login_throttle::Entity::find_by_id(key.to_owned())
            .one(&self.db)
            .await?
            .map_or(1, |r| r.failed);
        let blocked_until = login_block(failed).map(|block| at + block);
        if blocked_until.is_some() {
            login_throttle::Entity::update_many()
                .col_expr(
                    login_throttle::Column::BlockedUntil,
                    Expr::value(blocked_until),
                )
                .filter(login_throttle::Column::Key.eq(key))
                .exec(&self.db)
                .await?;
        }
        // Counters nobody has touched for a day are forgotten.
        login_throttle::Entity::delete_many()
            .filter(login_throttle::Column::UpdatedAt.lt(at - chrono::TimeDelta::days(1)))
            .exec(&self.db)
            .await?;
        if blocked_until.is_some() {
            tracing::warn!(failed, "login blocked after repeated wrong passwords");
        }
        Ok(())
    }

    async fn login_succeeded(&self, key: &str) -> Result<()> {
        login_throttle::Entity::delete_by_id(key.to_owned())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Rotates a refresh token. A token used twice means it leaked: its whole session is
    /// revoked.
    pub async fn refresh(&self, presented: &str) -> Result<IssuedSession> {
        let Some(row) = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenDigest.eq(secret::digest(presented)))
            .one(&self.db)
            .await?
        else {
            return Err(IdentityError::Unauthenticated);
        };
        let at = now();
        let session = self.live_session(&row.session_id, at).await?;
        let replacement = secret::generate(REFRESH_PREFIX);
        let txn = self.db.begin().await?;
        let marked = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(at))
            .filter(refresh_token::Column::Id.eq(row.id))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if marked.rows_affected != 1 {
            txn.rollback().await?;
            tracing::warn!(session = %session.id, "refresh token reused; revoking its session");
            self.revoke_session(&session.id, at).await?;
            return Err(IdentityError::SessionRevoked {
                user_id: session.user_id,
            });
        }
        insert_refresh_token(&txn, &session.id, &replacement, at).await?;
        txn.commit().await?;
        let user = user::Entity::find_by_id(session.user_id)
            .one(&self.db)
            .await?
            .ok_or(IdentityError::Unauthenticated)?;
        self.issue(user, &session.id, replacement, at)
    }

    /// Revokes the session an access token belongs to.
    pub async fn logout(&self, access_token: &str) -> Result<()> {
        let claims = self
            .signer
            .verify(access_token)
            .ok_or(IdentityError::Unauthenticated)?;
        let at = now();
        let session = self.live_session(&claims.sid, at).await?;
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
        match session::Entity::find_by_id(id.to_owned())
            .one(&self.db)
            .await?
        {
            Some(s) if s.revoked_at.is_none() && s.expires_at > at => Ok(s),
            _ => Err(IdentityError::Unauthenticated),
        }
    }

    async fn revoke_session(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(at))
            .filter(session::Column::Id.eq(id))
            .filter(session::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

async fn insert_refresh_token<C: sea_orm::ConnectionTrait>(
    db: &C,
    session_id: &str,
    token: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    refresh_token::ActiveModel {
        session_id: Set(session_id.to_owned()),
        token_digest: Set(secret::digest(token)),
        created_at: Set(at),
        used_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}
