//! Plans, images and locations: rows, and the domain's catalog types made from them.

use std::collections::BTreeMap;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, QueryOrder, Set};

use super::entity::{image, location, plan};
use crate::domain::catalog::{Catalog, Image, Location, Plan, TrafficAction};

impl From<plan::Model> for Plan {
    fn from(p: plan::Model) -> Self {
        Self {
            id: p.id,
            name: p.name,
            vcpus: u32::try_from(p.vcpus).unwrap_or(0),
            memory_mb: u64::try_from(p.memory_mb).unwrap_or(0),
            disk_gb: u64::try_from(p.disk_gb).unwrap_or(0),
            bandwidth_gb: u64::try_from(p.bandwidth_gb).unwrap_or(0),
            monthly_price: p.monthly_price,
            snapshot_limit: u32::try_from(p.snapshot_limit).unwrap_or(0),
            backup_limit: u32::try_from(p.backup_limit).unwrap_or(0),
            traffic_action: TrafficAction::parse(&p.traffic_action).unwrap_or_default(),
            throttle_mbit: u32::try_from(p.throttle_mbit).unwrap_or(0),
        }
    }
}

impl From<image::Model> for Image {
    fn from(i: image::Model) -> Self {
        let templates: BTreeMap<String, String> =
            serde_json::from_str(&i.templates).unwrap_or_default();
        Self {
            id: i.id,
            name: i.name,
            kind: i.kind,
            templates,
        }
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
        snapshot_limit: Set(i64::from(p.snapshot_limit)),
        backup_limit: Set(i64::from(p.backup_limit)),
        traffic_action: Set(p.traffic_action.as_str().to_owned()),
        throttle_mbit: Set(i64::from(p.throttle_mbit)),
    }
}

fn image_row(i: &Image) -> image::ActiveModel {
    image::ActiveModel {
        id: Set(i.id),
        name: Set(i.name.clone()),
        kind: Set(i.kind.clone()),
        // A map of strings always encodes.
        templates: Set(serde_json::to_string(&i.templates).unwrap_or_else(|_| "{}".to_owned())),
    }
}

fn location_row(l: &Location) -> location::ActiveModel {
    location::ActiveModel {
        code: Set(l.code.clone()),
        name: Set(l.name.clone()),
    }
}

/// Adds the entries the database does not have yet; those already there stay as they are.
pub async fn seed<C: ConnectionTrait>(db: &C, catalog: &Catalog) -> Result<(), DbErr> {
    for p in &catalog.plans {
        plan::Entity::insert(plan_row(p))
            .on_conflict_do_nothing_on([plan::Column::Id])
            .exec(db)
            .await?;
    }
    for i in &catalog.images {
        image::Entity::insert(image_row(i))
            .on_conflict_do_nothing_on([image::Column::Id])
            .exec(db)
            .await?;
    }
    for l in &catalog.locations {
        location::Entity::insert(location_row(l))
            .on_conflict_do_nothing_on([location::Column::Code])
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The whole catalog.
pub async fn load<C: ConnectionTrait>(db: &C) -> Result<Catalog, DbErr> {
    Ok(Catalog {
        plans: plans(db).await?,
        images: images(db).await?,
        locations: location::Entity::find()
            .order_by_asc(location::Column::Code)
            .all(db)
            .await?
            .into_iter()
            .map(|l| Location {
                code: l.code,
                name: l.name,
            })
            .collect(),
    })
}

pub async fn plans<C: ConnectionTrait>(db: &C) -> Result<Vec<Plan>, DbErr> {
    Ok(plan::Entity::find()
        .order_by_asc(plan::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(Plan::from)
        .collect())
}

pub async fn images<C: ConnectionTrait>(db: &C) -> Result<Vec<Image>, DbErr> {
    Ok(image::Entity::find()
        .order_by_asc(image::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(Image::from)
        .collect())
}

pub async fn plan<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<Plan>, DbErr> {
    Ok(plan::Entity::find_by_id(id).one(db).await?.map(Plan::from))
}

pub async fn image<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<Image>, DbErr> {
    Ok(image::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(Image::from))
}

pub async fn location_exists<C: ConnectionTrait>(db: &C, code: &str) -> Result<bool, DbErr> {
    Ok(location::Entity::find_by_id(code.to_owned())
        .one(db)
        .await?
        .is_some())
}

/// Adds or replaces a plan; with `add_only`, adds only: false when one has its id.
pub async fn put_plan<C: ConnectionTrait>(db: &C, p: &Plan, add_only: bool) -> Result<bool, DbErr> {
    let mut on_conflict = OnConflict::column(plan::Column::Id);
    let stored = plan::Entity::insert(plan_row(p))
        .on_conflict(if add_only {
            on_conflict.do_nothing().to_owned()
        } else {
            on_conflict
                .update_columns([
                    plan::Column::Name,
                    plan::Column::Vcpus,
                    plan::Column::MemoryMb,
                    plan::Column::DiskGb,
                    plan::Column::BandwidthGb,
                    plan::Column::MonthlyPrice,
                    plan::Column::SnapshotLimit,
                    plan::Column::BackupLimit,
                    plan::Column::TrafficAction,
                    plan::Column::ThrottleMbit,
                ])
                .to_owned()
        })
        .exec_without_returning(db)
        .await?;
    Ok(stored == 1)
}

/// Adds or replaces an image; with `add_only`, adds only: false when one has its id.
pub async fn put_image<C: ConnectionTrait>(
    db: &C,
    i: &Image,
    add_only: bool,
) -> Result<bool, DbErr> {
    let mut on_conflict = OnConflict::column(image::Column::Id);
    let stored = image::Entity::insert(image_row(i))
        .on_conflict(if add_only {
            on_conflict.do_nothing().to_owned()
        } else {
            on_conflict
                .update_columns([
                    image::Column::Name,
                    image::Column::Kind,
                    image::Column::Templates,
                ])
                .to_owned()
        })
        .exec_without_returning(db)
        .await?;
    Ok(stored == 1)
}

/// Adds or renames a location; with `add_only`, adds only: false when its code is taken.
pub async fn put_location<C: ConnectionTrait>(
    db: &C,
    l: &Location,
    add_only: bool,
) -> Result<bool, DbErr> {
    let mut on_conflict = OnConflict::column(location::Column::Code);
    let stored = location::Entity::insert(location_row(l))
        .on_conflict(if add_only {
            on_conflict.do_nothing().to_owned()
        } else {
            on_conflict.update_column(location::Column::Name).to_owned()
        })
        .exec_without_returning(db)
        .await?;
    Ok(stored == 1)
}
