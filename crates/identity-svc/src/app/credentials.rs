//! Long-lived credentials: Skyport API keys, CVM token pairs and VPS.org API tokens.

use super::*;

impl Identity {
    /// Mints a credential for the caller; the secret is returned once and stored only as a
    /// digest.
    pub async fn create_credential(
        &self,
        caller: Caller,
        kind: CredentialKind,
        name: &str,
        client_api: bool,
    ) -> Result<(Credential, String)> {
        let name = if name.trim().is_empty() {
            kind.default_name().to_owned()
        } else {
            validate::label("name", name, 64)?
        };
        if kind == CredentialKind::SkyportApiKey && !caller.admin {
            return Err(IdentityError::Forbidden(
                "only administrators may create Skyport API keys",
            ));
        }
        let active = credential::Entity::find()
            .filter(credential::Column::UserId.eq(caller.user_id))
            .filter(credential::Column::RevokedAt.is_null())
            .count(&self.db)
            .await?;
        if active >= MAX_CREDENTIALS_PER_USER {
            return Err(IdentityError::Conflict(format!(
                "at most {MAX_CREDENTIALS_PER_USER} active credentials per user; revoke one first"
            )));
        }
        let (lookup, secret_value, digest, public_token, client_api) = match kind {
            CredentialKind::SkyportApiKey | CredentialKind::VpsorgToken => {
                let prefix = if kind == CredentialKind::SkyportApiKey {
                    secret::SKYPORT_KEY_PREFIX
                } else {
                    secret::VPSORG_TOKEN_PREFIX
                };
                let value = secret::generate(prefix);
                let digest = secret::digest(&value);
                (digest.clone(), value, digest, None, false)
            }
            CredentialKind::CvmPair => {
                let public = secret::generate(CVM_PUBLIC_PREFIX);
                let private = secret::generate(CVM_PRIVATE_PREFIX);
                let digest = secret::digest(&private);
                (public.clone(), private, digest, Some(public), client_api)
            }
            CredentialKind::AccessToken => {
                return Err(IdentityError::invalid(
                    "type",
                    "access tokens come from login, not from here",
                ));
            }
        };
        let row = credential::ActiveModel {
            user_id: Set(caller.user_id),
            kind: Set(kind.as_str().to_owned()),
            name: Set(name),
            lookup: Set(lookup),
            secret_digest: Set(digest),
            hint: Set(secret::hint(&secret_value)),
            public_token: Set(public_token),
            client_api: Set(client_api),
            created_at: Set(now()),
            last_used_at: Set(None),
            revoked_at: Set(None),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;
        Ok((row.into(), secret_value))
    }

    pub async fn list_credentials(
        &self,
        caller: Caller,
        user: Option<UserId>,
    ) -> Result<Vec<Credential>> {
        let owner = self.target_user(caller, user)?;
        let rows = credential::Entity::find()
            .filter(credential::Column::UserId.eq(owner.get()))
            .filter(credential::Column::RevokedAt.is_null())
            .order_by_asc(credential::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(Credential::from).collect())
    }

    /// Revokes one of the caller's credentials (an administrator may revoke anyone's).
    /// Revoking an already revoked credential succeeds.
    pub async fn revoke_credential(&self, caller: Caller, id: i64) -> Result<()> {
        let row = credential::Entity::find_by_id(id).one(&self.db).await?;
        match row {
            Some(row) if caller.admin || row.user_id == caller.user_id => {
                credential::Entity::update_many()
                    .col_expr(credential::Column::RevokedAt, Expr::value(now()))
                    .filter(credential::Column::Id.eq(row.id))
                    .filter(credential::Column::RevokedAt.is_null())
                    .exec(&self.db)
                    .await?;
                Ok(())
            }
            _ => Err(IdentityError::NotFound("token")),
        }
    }
}
