//! The catalog in the database: seeded from the catalog file, edited by administrators.

use platform::grpc::Caller;

use super::App;
use crate::domain::catalog::{Catalog, Image, Location, Plan};
use crate::error::{Result, ServerError};
use crate::store;

impl App {
    /// Adds the file's entries the database does not have yet; entries already there (maybe
    /// edited over the API) are left alone.
    pub async fn seed_catalog(&self, catalog: &Catalog) -> Result<()> {
        Ok(store::catalog::seed(&self.db, catalog).await?)
    }

    pub async fn catalog(&self) -> Result<Catalog> {
        Ok(store::catalog::load(&self.db).await?)
    }

    /// Adds or replaces a plan; with `add_only`, refuses to replace one.
    pub async fn put_plan(&self, caller: Caller, p: Plan, add_only: bool) -> Result<Plan> {
        require_admin(caller)?;
        Catalog {
            plans: vec![p.clone()],
            ..Catalog::default()
        }
        .check()
        .map_err(|m| ServerError::invalid("plan", m))?;
        if !store::catalog::put_plan(&self.db, &p, add_only).await? {
            return Err(ServerError::AlreadyExists("plan"));
        }
        Ok(p)
    }

    /// Adds or replaces a image; with `add_only`, refuses to replace one.
    pub async fn put_image(&self, caller: Caller, i: Image, add_only: bool) -> Result<Image> {
        require_admin(caller)?;
        Catalog {
            images: vec![i.clone()],
            ..Catalog::default()
        }
        .check()
        .map_err(|m| ServerError::invalid("image", m))?;
        if !store::catalog::put_image(&self.db, &i, add_only).await? {
            return Err(ServerError::AlreadyExists("image"));
        }
        Ok(i)
    }

    /// Adds or replaces a location; with `add_only`, refuses to replace one.
    pub async fn put_location(
        &self,
        caller: Caller,
        l: Location,
        add_only: bool,
    ) -> Result<Location> {
        require_admin(caller)?;
        Catalog {
            locations: vec![l.clone()],
            ..Catalog::default()
        }
        .check()
        .map_err(|m| ServerError::invalid("location", m))?;
        if !store::catalog::put_location(&self.db, &l, add_only).await? {
            return Err(ServerError::AlreadyExists("location"));
        }
        Ok(l)
    }
}

pub(super) fn require_admin(caller: Caller) -> Result<()> {
    if caller.admin {
        Ok(())
    } else {
        Err(ServerError::Forbidden("administrators only"))
    }
}
