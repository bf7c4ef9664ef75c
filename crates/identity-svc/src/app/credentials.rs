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
        let active = store::credentials::count_active_of(&self.db, caller.user_id).await?;
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
        let new = store::credentials::NewRow {
            user_id: caller.user_id,
            kind: kind.as_str(),
            name,
            lookup,
            secret_digest: digest,
            hint: secret::hint(&secret_value),
            public_token,
            client_api,
        };
        let row = store::credentials::insert(&self.db, new, now()).await?;
        Ok((row.into(), secret_value))
    }

    pub async fn list_credentials(
        &self,
        caller: Caller,
        user: Option<UserId>,
    ) -> Result<Vec<Credential>> {
        let owner = self.target_user(caller, user)?;
        let rows = store::credentials::active_of(&self.db, owner.get()).await?;
        Ok(rows.into_iter().map(Credential::from).collect())
    }

    /// Revokes one of the caller's credentials (an administrator may revoke anyone's).
    /// Revoking an already revoked credential succeeds.
    pub async fn revoke_credential(&self, caller: Caller, id: i64) -> Result<()> {
        match store::credentials::find(&self.db, id).await? {
            Some(row) if caller.admin || row.user_id == caller.user_id => {
                Ok(store::credentials::revoke(&self.db, row.id, now()).await?)
            }
            _ => Err(IdentityError::NotFound("token")),
        }
    }
}
