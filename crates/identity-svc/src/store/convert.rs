//! Rows onto the domain's types: the one place that knows both.

use proto::ids::UserId;

use super::entity::{credential, ledger, service_account, user};
use crate::domain::account::{Credential, CredentialKind, LedgerEntry, Role, ServiceAccount, User};

impl From<user::Model> for User {
    fn from(u: user::Model) -> Self {
        Self {
            id: UserId::stored(u.id),
            role: Role::of(&u.role),
            uuid: u.uuid,
            skyport_id: u.skyport_id,
            username: u.username,
            email: u.email,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

impl From<credential::Model> for Credential {
    fn from(c: credential::Model) -> Self {
        Self {
            id: c.id,
            kind: CredentialKind::parse(&c.kind),
            name: c.name,
            hint: c.hint,
            public_token: c.public_token,
            client_api: c.client_api,
            created_at: c.created_at,
            last_used_at: c.last_used_at,
        }
    }
}

impl From<ledger::Model> for LedgerEntry {
    fn from(e: ledger::Model) -> Self {
        Self {
            id: e.id,
            user_id: UserId::stored(e.user_id),
            amount: e.amount,
            balance_after: e.balance_after,
            reason: e.reason,
            reference: e.reference,
            created_at: e.created_at,
        }
    }
}

impl From<service_account::Model> for ServiceAccount {
    fn from(a: service_account::Model) -> Self {
        Self {
            id: a.id,
            name: a.name,
            user_id: UserId::stored(a.user_id),
            scopes: a.scopes.split_whitespace().map(str::to_owned).collect(),
            hint: a.hint,
            created_at: a.created_at,
            last_used_at: a.last_used_at,
        }
    }
}
