//! The catalog in the database: seeded from the catalog file, edited by administrators.

use std::collections::BTreeMap;

use platform::grpc::Caller;
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, QueryOrder, Set};

use super::App;
use crate::domain::catalog::{Catalog, Image, Location, Plan};
use crate::error::{Result, ServerError};
use crate::store::entity::{image, location, plan};

impl App {
    /// Adds the file's entries the database does not have yet; entries already there (maybe
    /// edited over the API) are left alone.
    pub async fn seed_catalog(&self, catalog: &Catalog) -> Result<()> {
        for p in &catalog.plans {
            plan::Entity::insert(plan_row(p))
                .on_conflict_do_nothing_on([plan::Column::Id])
                .exec(&self.db)
                .await?;
        }
        for i in &catalog.images {
            image::Entity::insert(image_row(i)?)
                .on_conflict_do_nothing_on([image::Column::Id])
                .exec(&self.db)
                .await?;
        }
        for l in &catalog.locations {
            location::Entity::insert(location_row(l))
                .on_conflict_do_nothing_on([location::Column::Code])
                .exec(&self.db)
                .await?;
        }
        Ok(())
    }

    pub async fn catalog(&self) -> Result<Catalog> {
        let plans = plan::Entity::find()
            .order_by_asc(plan::Column::Id)
            .all(&self.db)
            .await?;
        let images = image::Entity::find()
            .order_by_asc(image::Column::Id)
            .all(&self.db)
            .await?;
        let locations = location::Entity::find()
            .order_by_asc(location::Column::Code)
            .all(&self.db)
            .await?;
        Ok(Catalog {
            plans: plans.into_iter().map(plan_of).collect(),
            images: images.into_iter().map(image_of).collect(),
            locations: locations
                .into_iter()
                .map(|l| Location {
                    code: l.code,
                    name: l.name,
                })
                .collect(),
        })
    }

    pub async fn put_plan(&self, caller: Caller, p: Plan) -> Result<Plan> {
        require_admin(caller)?;
        Catalog {
            plans: vec![p.clone()],
            ..Catalog::default()
        }
        .check()
        .map_err(|m| ServerError::invalid("plan", m))?;
        plan::Entity::insert(plan_row(&p))
            .on_conflict(
                OnConflict::column(plan::Column::Id)
                    .update_columns([
                        plan::Column::Name,
                        plan::Column::Vcpus,
                        plan::Column::MemoryMb,
                        plan::Column::DiskGb,
                        plan::Column::BandwidthGb,
                        plan::Column::MonthlyPrice,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(p)
    }

    pub async fn put_image(&self, caller: Caller, i: Image) -> Result<Image> {
        require_admin(caller)?;
        Catalog {
            images: vec![i.clone()],
            ..Catalog::default()
        }
        .check()
        .map_err(|m| ServerError::invalid("image", m))?;
        image::Entity::insert(image_row(&i)?)
            .on_conflict(
                OnConflict::column(image::Column::Id)
                    .update_columns([
                        image::Column::Name,
                        image::Column::Kind,
                        image::Column::Templates,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(i)
    }

    pub async fn put_location(&self, caller: Caller, l: Location) -> Result<Location> {
        require_admin(caller)?;
        Catalog {
            locations: vec![l.clone()],
            ..Catalog::default()
        }
        .check()
        .map_err(|m| ServerError::invalid("location", m))?;
        location::Entity::insert(location_row(&l))
            .on_conflict(
                OnConflict::column(location::Column::Code)
                    .update_column(location::Column::Name)
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
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

fn plan_row(p: &Plan) -> plan::ActiveModel {
    plan::ActiveModel {
        id: Set(p.id),
        name: Set(p.name.clone()),
        vcpus: Set(i64::from(p.vcpus)),
        memory_mb: Set(i64::try_from(p.memory_mb).unwrap_or(i64::MAX)),
        disk_gb: Set(i64::try_from(p.disk_gb).unwrap_or(i64::MAX)),
        bandwidth_gb: Set(i64::try_from(p.bandwidth_gb).unwrap_or(i64::MAX)),
        monthly_price: Set(p.monthly_price),
    }
}

pub(super) fn plan_of(p: plan::Model) -> Plan {
    Plan {
        id: p.id,
        name: p.name,
        vcpus: u32::try_from(p.vcpus).unwrap_or(0),
        memory_mb: u64::try_from(p.memory_mb).unwrap_or(0),
        disk_gb: u64::try_from(p.disk_gb).unwrap_or(0),
        bandwidth_gb: u64::try_from(p.bandwidth_gb).unwrap_or(0),
        monthly_price: p.monthly_price,
    }
}

fn image_row(i: &Image) -> Result<image::ActiveModel> {
    Ok(image::ActiveModel {
        id: Set(i.id),
        name: Set(i.name.clone()),
        kind: Set(i.kind.clone()),
        templates: Set(
            serde_json::to_string(&i.templates).map_err(|e| ServerError::Internal(e.into()))?
        ),
    })
}

pub(super) fn image_of(i: image::Model) -> Image {
    let templates: BTreeMap<String, String> =
        serde_json::from_str(&i.templates).unwrap_or_default();
    Image {
        id: i.id,
        name: i.name,
        kind: i.kind,
        templates,
    }
}

fn location_row(l: &Location) -> location::ActiveModel {
    location::ActiveModel {
        code: Set(l.code.clone()),
        name: Set(l.name.clone()),
    }
}
