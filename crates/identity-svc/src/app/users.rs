//! Accounts: who may create whom, and finding them again.

use super::*;

impl Identity {
    /// Creates an account: for a caller (an administrator, or a user making one for someone
    /// else), or, without one, a person registering themselves while registration is open.
    pub async fn create_user(&self, caller: Option<Caller>, new: NewUser) -> Result<User> {
        if caller.is_none() && !self.allow_registration {
            return Err(IdentityError::Forbidden("registration is closed"));
        }
        if new.admin && !caller.is_some_and(|c| c.admin) {
            return Err(IdentityError::Forbidden(
                "only an administrator may create administrators",
            ));
        }
        self.insert_user(new).await.map(User::from)
    }

    pub(super) async fn insert_user(&self, new: NewUser) -> Result<user::Model> {
        let username = Username::parse(&new.username)?;
        let email = Email::parse(&new.email)?;
        validate::new_password(&new.password)?;
        let skyport_id = match &new.skyport_id {
            Some(id) => validate::skyport_id(id)?,
            None => uuid::Uuid::new_v4().to_string(),
        };
        let taken = store::users::taken(
            &self.db,
            username.as_str(),
            email.as_str(),
            skyport_id.as_str(),
        )
        .await?;
        if let Some(taken) = taken {
            let what = if taken.username == username.as_str() {
                "username"
            } else if taken.email == email.as_str() {
                "email"
            } else {
                "userId"
            };
            return Err(IdentityError::Conflict(format!(
                "a user with this {what} already exists"
            )));
        }
        let password_hash = password::hash(new.password).await?;
        let at = now();
        let txn = self.db.begin().await?;
        let row = store::users::NewRow {
            uuid: uuid::Uuid::new_v4().to_string(),
            skyport_id,
            username: username.as_str().to_owned(),
            email: email.as_str().to_owned(),
            role: if new.admin { ROLE_ADMIN } else { ROLE_USER },
            password_hash,
        };
        let inserted = store::users::insert(&txn, row, at).await;
        let created = match inserted {
            Ok(created) => created,
            Err(e) if is_unique_violation(&e) => {
                return Err(IdentityError::Conflict(
                    "a user with these details already exists".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        txn.commit().await?;
        Ok(created)
    }

    /// A user the caller may see: themselves, or anyone for an administrator. Anything else
    /// is "not found", so ids of other users are not confirmed.
    pub async fn get_user(&self, caller: Caller, lookup: UserLookup) -> Result<User> {
        let by = match &lookup {
            UserLookup::Id(id) => store::users::By::Id(id.get()),
            UserLookup::SkyportId(id) => store::users::By::SkyportId(id),
            UserLookup::Email(email) => store::users::By::Email(email),
            UserLookup::Username(name) => store::users::By::Username(name),
        };
        let found = store::users::find(&self.db, by).await?;
        match found {
            Some(u) if caller.admin || u.id == caller.user_id => Ok(User::from(u)),
            _ => Err(IdentityError::NotFound("user")),
        }
    }

    /// A page of users in id order, all of them or only `ids`; the next page's token.
    pub async fn list_users(
        &self,
        caller: Caller,
        page: platform::page::Page,
        ids: &[i64],
    ) -> Result<(Vec<User>, String)> {
        require_admin(caller)?;
        platform::page::check_batch(ids)
            .map_err(|(field, message)| IdentityError::invalid(field, message))?;
        let rows = store::users::page(&self.db, page.after, page.fetch(), ids).await?;
        let (rows, next) = page.finish(rows, |u| u.id);
        Ok((rows.into_iter().map(User::from).collect(), next))
    }
}
