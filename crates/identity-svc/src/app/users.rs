//! Accounts: who may create whom, and finding them again.

use super::*;

impl Identity {
    /// Creates a user. Only an administrator may create another administrator.
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
        let taken = user::Entity::find()
            .filter(
                Condition::any()
                    .add(user::Column::Username.eq(username.as_str()))
                    .add(user::Column::Email.eq(email.as_str()))
                    .add(user::Column::SkyportId.eq(skyport_id.as_str())),
            )
            .one(&self.db)
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
        let inserted = user::ActiveModel {
            uuid: Set(uuid::Uuid::new_v4().to_string()),
            skyport_id: Set(skyport_id),
            username: Set(username.as_str().to_owned()),
            email: Set(email.as_str().to_owned()),
            role: Set(if new.admin { ROLE_ADMIN } else { ROLE_USER }.to_owned()),
            password_hash: Set(password_hash),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        }
        .insert(&txn)
        .await;
        let created = match inserted {
            Ok(created) => created,
            Err(e) if is_unique_violation(&e) => {
                return Err(IdentityError::Conflict(
                    "a user with these details already exists".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        balance::ActiveModel {
            user_id: Set(created.id),
            balance: Set(0),
            updated_at: Set(at),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        Ok(created)
    }

    /// A user the caller may see: themselves, or anyone for an administrator. Anything else
    /// is "not found", so ids of other users are not confirmed.
    pub async fn get_user(&self, caller: Caller, lookup: UserLookup) -> Result<User> {
        let filter = match lookup {
            UserLookup::Id(id) => user::Column::Id.eq(id.get()),
            UserLookup::SkyportId(id) => user::Column::SkyportId.eq(id),
            UserLookup::Email(email) => user::Column::Email.eq(email.trim().to_ascii_lowercase()),
            UserLookup::Username(name) => user::Column::Username.eq(name),
        };
        let found = user::Entity::find().filter(filter).one(&self.db).await?;
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
        if ids.len() > usize::try_from(platform::page::MAX_LIMIT).unwrap_or(usize::MAX) {
            return Err(IdentityError::invalid("ids", "at most 1000 ids at once"));
        }
        let mut query = user::Entity::find()
            .filter(user::Column::Id.gt(page.after))
            .order_by_asc(user::Column::Id)
            .limit(page.fetch());
        if !ids.is_empty() {
            query = query.filter(user::Column::Id.is_in(ids.iter().copied()));
        }
        let (rows, next) = page.finish(query.all(&self.db).await?, |u| u.id);
        Ok((rows.into_iter().map(User::from).collect(), next))
    }
}
