//! Credits: balances and the ledger, adjusted idempotently by reference.

use super::*;

impl Identity {
    pub async fn balance(&self, caller: Caller, user: Option<UserId>) -> Result<(UserId, i64)> {
        let owner = self.target_user(caller, user)?;
        let balance = store::credits::balance_of(&self.db, owner.get())
            .await?
            .ok_or(IdentityError::NotFound("user"))?;
        Ok((owner, balance))
    }

    /// Grants (positive) or charges (negative) credits, never below zero unless `allow_debt`
    /// (the control plane charging for what was already used). With a reference the call is
    /// idempotent: a repeat returns the first entry.
    pub async fn adjust_credits(
        &self,
        caller: Caller,
        user: UserId,
        amount: i64,
        reason: &str,
        reference: Option<&str>,
        allow_debt: bool,
    ) -> Result<Adjustment> {
        require_admin(caller)?;
        let user_id = user.get();
        if allow_debt && !caller.is_system() {
            return Err(IdentityError::Forbidden(
                "only the control plane may charge into debt",
            ));
        }
        if amount == 0 || amount.unsigned_abs() > MAX_ADJUSTMENT.unsigned_abs() {
            return Err(IdentityError::invalid(
                "amount",
                format!(
                    "amount must be a non-zero whole number of minor units, at most {MAX_ADJUSTMENT} either way"
                ),
            ));
        }
        let reason = validate::label("reason", reason, 200)?;
        let reference = reference
            .map(|r| validate::label("reference", r, 128))
            .transpose()?;
        if store::credits::balance_of(&self.db, user_id)
            .await?
            .is_none()
        {
            return Err(IdentityError::NotFound("user"));
        }
        if let Some(reference) = &reference
            && let Some(entry) = self.entry_by_reference(user_id, reference).await?
        {
            return replay(entry, amount);
        }
        let at = now();
        let txn = self.db.begin().await?;
        // One conditional update: concurrent charges can never take the balance below zero
        // (nor further below it, for a debt).
        let floor = if allow_debt || amount > 0 {
            i64::MIN
        } else {
            -amount
        };
        if !store::credits::add(&txn, user_id, amount, floor, at).await? {
            txn.rollback().await?;
            let (_, balance) = self.balance(caller, Some(user)).await?;
            return Err(IdentityError::InsufficientCredits {
                balance,
                needed: -amount,
            });
        }
        let balance_after = store::credits::balance_of(&txn, user_id)
            .await?
            .ok_or(IdentityError::NotFound("user"))?;
        let entry = store::credits::NewEntry {
            user_id,
            amount,
            balance_after,
            reason,
            reference: reference.clone(),
        };
        let inserted = store::credits::record(&txn, entry, at).await;
        match inserted {
            Ok(entry) => {
                txn.commit().await?;
                Ok(Adjustment {
                    entry: entry.into(),
                    replayed: false,
                })
            }
            Err(e) if is_unique_violation(&e) => {
                // A concurrent call with the same reference won the race.
                txn.rollback().await?;
                let reference = reference.unwrap_or_default();
                let entry = self.entry_by_reference(user_id, &reference).await?.ok_or(
                    IdentityError::Internal(anyhow::anyhow!("ledger reference vanished")),
                )?;
                replay(entry, amount)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn entry_by_reference(
        &self,
        user_id: i64,
        reference: &str,
    ) -> Result<Option<ledger::Model>> {
        Ok(store::credits::by_reference(&self.db, user_id, reference).await?)
    }

    pub async fn ledger(
        &self,
        caller: Caller,
        user: Option<UserId>,
        limit: u32,
    ) -> Result<(Vec<LedgerEntry>, i64)> {
        let (owner, balance) = self.balance(caller, user).await?;
        let owner = owner.get();
        let limit = if limit == 0 { 100 } else { limit.min(1000) };
        let entries = store::credits::newest(&self.db, owner, u64::from(limit)).await?;
        Ok((
            entries.into_iter().map(LedgerEntry::from).collect(),
            balance,
        ))
    }

    /// The user an operation targets: the caller, or (administrators only) another user.
    pub(super) fn target_user(&self, caller: Caller, user: Option<UserId>) -> Result<UserId> {
        match user {
            None => Ok(UserId::stored(caller.user_id)),
            Some(id) if id.get() == caller.user_id || caller.admin => Ok(id),
            Some(_) => Err(IdentityError::NotFound("user")),
        }
    }
}

fn replay(entry: ledger::Model, amount: i64) -> Result<Adjustment> {
    if entry.amount != amount {
        return Err(IdentityError::Conflict(
            "this reference was already used for a different amount".to_owned(),
        ));
    }
    Ok(Adjustment {
        entry: entry.into(),
        replayed: true,
    })
}
