//! Turning a request's credential into a principal: one `Authenticate` call to identity-svc,
//! with successes cached briefly so a hot client costs one gRPC call per TTL.

use std::time::Duration;

use moka::future::Cache;
use platform::grpc::Caller;
use proto::identity::v1 as pb;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::IdentityClient;

/// A credential as presented on the wire.
#[derive(Debug, Clone)]
pub enum Credential {
    AccessToken(String),
    SkyportApiKey(String),
    VpsorgToken(String),
    CvmPair { public: String, private: String },
}

impl Credential {
    /// Cache key: a digest, so the cache never holds a secret.
    fn cache_key(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        match self {
            Self::AccessToken(t) => {
                hasher.update(b"a");
                hasher.update(t.as_bytes());
            }
            Self::SkyportApiKey(k) => {
                hasher.update(b"s");
                hasher.update(k.as_bytes());
            }
            Self::VpsorgToken(t) => {
                hasher.update(b"v");
                hasher.update(t.as_bytes());
            }
            Self::CvmPair { public, private } => {
                hasher.update(b"c");
                hasher.update(public.len().to_le_bytes());
                hasher.update(public.as_bytes());
                hasher.update(private.as_bytes());
            }
        }
        hasher.finalize().into()
    }

    fn into_request(self) -> pb::AuthenticateRequest {
        use pb::authenticate_request::Credential as C;
        let credential = match self {
            Self::AccessToken(t) => C::AccessToken(t),
            Self::SkyportApiKey(k) => C::SkyportApiKey(k),
            Self::VpsorgToken(t) => C::VpsorgToken(t),
            Self::CvmPair { public, private } => C::CvmPair(pb::CvmPair {
                public_token: public,
                private_token: private,
            }),
        };
        pb::AuthenticateRequest {
            credential: Some(credential),
        }
    }
}

/// Who is calling, as identity-svc resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub admin: bool,
    pub scopes: Vec<String>,
    pub credential_id: String,
}

impl Principal {
    pub fn caller(&self) -> Caller {
        if self.admin {
            Caller::admin(self.user_id)
        } else {
            Caller::user(self.user_id)
        }
    }
}

#[derive(Clone)]
pub struct Authenticator {
    identity: IdentityClient,
    cache: Cache<[u8; 32], Principal>,
}

impl Authenticator {
    pub fn new(identity: IdentityClient, ttl: Duration) -> Self {
        let cache = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(ttl)
            .build();
        Self { identity, cache }
    }

    /// The principal behind a credential; 401 if identity-svc refuses it.
    pub async fn authenticate(&self, credential: Credential) -> Result<Principal, ApiError> {
        let key = credential.cache_key();
        let mut identity = self.identity.clone();
        // Requests that miss together (a hot credential's entry just expired) share one call;
        // a refusal is not cached.
        self.cache
            .try_get_with(key, async move {
                let reply = identity
                    .authenticate(Caller::SYSTEM.request(credential.into_request()))
                    .await
                    .map_err(|status| ApiError::from_status(&status))?
                    .into_inner();
                Ok(Principal {
                    user_id: reply.user_id,
                    admin: reply.role == i32::from(pb::Role::Admin),
                    scopes: reply.scopes,
                    credential_id: reply.credential_id,
                })
            })
            .await
            .map_err(|error: std::sync::Arc<ApiError>| (*error).clone())
    }

    /// Forgets every cached principal. Called after this gateway revokes anything, so the
    /// revocation is immediate here; other replicas follow within the TTL.
    pub fn forget_all(&self) {
        self.cache.invalidate_all();
    }
}
