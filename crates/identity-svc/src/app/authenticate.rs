//! Authentication: every kind of presented credential resolved to a principal.

use super::*;

impl Identity {
    /// Resolves any credential to a principal, or `Unauthenticated`.
    pub async fn authenticate(&self, presented: Presented) -> Result<Principal> {
        let at = now();
        match presented {
            Presented::AccessToken(token) => {
                let claims = self
                    .signer
                    .verify(&token)
                    .ok_or(IdentityError::Unauthenticated)?;
                let session = self.live_session(&claims.sid, at).await?;
                if claims.user_id() != Some(session.user_id) {
                    return Err(IdentityError::Unauthenticated);
                }
                let user = self.user_by_id(session.user_id).await?;
                Ok(Principal {
                    user_id: user.id,
                    admin: user.role == ROLE_ADMIN,
                    kind: CredentialKind::AccessToken,
                    scopes: vec!["panel".to_owned()],
                    credential_id: session.id,
                })
            }
            Presented::SkyportApiKey(key) => {
                let row = self
                    .credential_by_secret(CredentialKind::SkyportApiKey, &key)
                    .await?;
                let user = self.user_by_id(row.user_id).await?;
                // Skyport keys are administrators' keys; a demoted owner's keys stop working.
                if user.role != ROLE_ADMIN {
                    return Err(IdentityError::Unauthenticated);
                }
                self.touch(&row, at).await;
                Ok(principal(
                    &user,
                    &row,
                    CredentialKind::SkyportApiKey,
                    vec!["skyport".into()],
                ))
            }
            Presented::VpsorgToken(token) => {
                let row = self
                    .credential_by_secret(CredentialKind::VpsorgToken, &token)
                    .await?;
                let user = self.user_by_id(row.user_id).await?;
                self.touch(&row, at).await;
                Ok(principal(
                    &user,
                    &row,
                    CredentialKind::VpsorgToken,
                    vec!["vpsorg".into()],
                ))
            }
            Presented::CvmPair { public, private } => {
                let row = self
                    .active_credential(CredentialKind::CvmPair, &public)
                    .await?;
                if !secret::matches(&private, &row.secret_digest) {
                    return Err(IdentityError::Unauthenticated);
                }
                let user = self.user_by_id(row.user_id).await?;
                self.touch(&row, at).await;
                let mut scopes = vec!["cvm".to_owned()];
                if row.client_api {
                    scopes.push("cvm:client".to_owned());
                }
                Ok(principal(&user, &row, CredentialKind::CvmPair, scopes))
            }
        }
    }

    async fn user_by_id(&self, id: i64) -> Result<user::Model> {
        store::users::by_id(&self.db, id)
            .await?
            .ok_or(IdentityError::Unauthenticated)
    }

    async fn credential_by_secret(
        &self,
        kind: CredentialKind,
        presented: &str,
    ) -> Result<credential::Model> {
        let row = self
            .active_credential(kind, &secret::digest(presented))
            .await?;
        if !secret::matches(presented, &row.secret_digest) {
            return Err(IdentityError::Unauthenticated);
        }
        Ok(row)
    }

    async fn active_credential(
        &self,
        kind: CredentialKind,
        lookup: &str,
    ) -> Result<credential::Model> {
        if lookup.is_empty() || lookup.len() > 512 {
            return Err(IdentityError::Unauthenticated);
        }
        store::credentials::active(&self.db, kind.as_str(), lookup)
            .await?
            .ok_or(IdentityError::Unauthenticated)
    }

    /// Records use, at most once a minute per credential; a failure here never fails the call.
    async fn touch(&self, row: &credential::Model, at: DateTime<Utc>) {
        if row
            .last_used_at
            .is_some_and(|last| at - last < LAST_USED_GRANULARITY)
        {
            return;
        }
        if let Err(e) = store::credentials::touch(&self.db, row.id, at).await {
            tracing::warn!(error = %e, "recording credential use failed");
        }
    }
}
