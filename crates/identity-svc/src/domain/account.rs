//! What identity-svc's rules speak of and hand out: accounts, their long-lived credentials,
//! ledger entries and service accounts. The store maps its rows onto these; no caller ever
//! sees a row (nor a secret's digest, which is not here).

use chrono::{DateTime, Utc};
use proto::ids::UserId;

/// Roles as stored.
pub const ROLE_ADMIN: &str = "admin";
pub const ROLE_USER: &str = "user";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
}

impl Role {
    /// A stored role; anything but `admin` is a plain user.
    pub fn of(stored: &str) -> Self {
        if stored == ROLE_ADMIN {
            Self::Admin
        } else {
            Self::User
        }
    }
}

/// An account.
#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub uuid: String,
    pub skyport_id: String,
    pub username: String,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The kinds of credential a client presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    AccessToken,
    SkyportApiKey,
    VpsorgToken,
    CvmPair,
}

impl CredentialKind {
    pub const ALL: [Self; 4] = [
        Self::AccessToken,
        Self::SkyportApiKey,
        Self::VpsorgToken,
        Self::CvmPair,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::SkyportApiKey => "skyport_api_key",
            Self::VpsorgToken => "vpsorg_token",
            Self::CvmPair => "cvm_pair",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == stored)
    }

    /// The name a credential gets when its owner gives none.
    pub fn default_name(self) -> &'static str {
        match self {
            Self::AccessToken => "session",
            Self::SkyportApiKey => "API key",
            Self::VpsorgToken => "API token",
            Self::CvmPair => "token pair",
        }
    }
}

/// A long-lived credential as its owner may see it: never its secret.
#[derive(Debug, Clone)]
pub struct Credential {
    pub id: i64,
    /// `None` for a kind this build does not know.
    pub kind: Option<CredentialKind>,
    pub name: String,
    /// The first characters of the secret, to tell credentials apart.
    pub hint: String,
    /// A CVM pair's public half.
    pub public_token: Option<String>,
    pub client_api: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// One movement of a user's credits.
#[derive(Debug, Clone)]
pub struct LedgerEntry {
    pub id: i64,
    pub user_id: UserId,
    pub amount: i64,
    pub balance_after: i64,
    pub reason: String,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A service account as administrators see it: never its key.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub id: i64,
    pub name: String,
    pub user_id: UserId,
    pub scopes: Vec<String>,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}
