//! IP pools per node or location, and address allocation. Uniqueness is the database's job:
//! an address row is unique per pool, and an owner holds one address per family, so
//! concurrent allocations can race but never share an address.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::Utc;
use ipnet::IpNet;
use platform::grpc::Caller;
use proto::ids::NodeId;

use super::{Nodes, is_unique_violation, require_admin, validate};
use crate::error::{NodeError, Result};
use crate::store;
use crate::store::entity::{node, pool};

/// Addresses scanned per pool for one allocation at most (IPv6 prefixes are vast).
const SCAN_LIMIT: u128 = 1 << 20;

#[derive(Debug, Clone, Default)]
pub struct NewPool {
    pub name: String,
    pub node_id: Option<i64>,
    pub location: Option<String>,
    pub range: String,
    pub gateway: String,
}

#[derive(Debug, Clone)]
pub struct PoolView {
    pub pool: pool::Model,
    pub size: u128,
    pub allocated: u64,
}

#[derive(Debug, Clone)]
pub struct AllocatedAddress {
    pub address: String,
    pub pool: pool::Model,
    pub owner: String,
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(family: i32, value: u128) -> IpAddr {
    if family == 4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(value).unwrap_or(u32::MAX)))
    } else {
        IpAddr::V6(Ipv6Addr::from(value))
    }
}

pub fn netmask(family: i32, prefix_len: i32) -> String {
    if family == 4 {
        let bits = u32::try_from(prefix_len).unwrap_or(0).min(32);
        let mask = if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        };
        Ipv4Addr::from(mask).to_string()
    } else {
        format!("/{prefix_len}")
    }
}

/// Parses a range: IPv4 `first-last` (prefix from the gateway, `10.0.0.1/24`) or a CIDR of
/// either family (network, broadcast and the gateway are never handed out).
fn parse_range(range: &str, gateway: &str) -> Result<(i32, u128, u128, i32, IpAddr)> {
    let bad_range = || {
        NodeError::invalid(
            "range",
            "range must be `first-last` (IPv4) or a CIDR like 10.0.0.0/24 or 2001:db8::/64",
        )
    };
    let bad_gateway = || {
        NodeError::invalid(
            "gateway",
            "gateway must be an address of the range's family, with /prefix for a first-last range",
        )
    };
    let (gateway_ip, gateway_prefix) = match gateway.trim().split_once('/') {
        Some((ip, prefix)) => (
            ip.parse::<IpAddr>().map_err(|_| bad_gateway())?,
            Some(prefix.parse::<i32>().map_err(|_| bad_gateway())?),
        ),
        None => (
            gateway
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| bad_gateway())?,
            None,
        ),
    };
    let range = range.trim();
    let (family, first, last, prefix) = if let Some((a, b)) = range.split_once('-') {
        let a: Ipv4Addr = a.trim().parse().map_err(|_| bad_range())?;
        let b: Ipv4Addr = b.trim().parse().map_err(|_| bad_range())?;
        let prefix = gateway_prefix.ok_or_else(bad_gateway)?;
        if !(8..=32).contains(&prefix) {
            return Err(bad_gateway());
        }
        (
            4,
            u128::from(u32::from(a)),
            u128::from(u32::from(b)),
            prefix,
        )
    } else {
        let net: IpNet = range.parse().map_err(|_| bad_range())?;
        let (family, min_prefix) = if net.addr().is_ipv4() {
            (4, 8)
        } else {
            (6, 48)
        };
        let prefix = i32::from(net.prefix_len());
        if prefix < min_prefix || (family == 4 && prefix > 30) || (family == 6 && prefix > 126) {
            return Err(NodeError::invalid(
                "range",
                "the prefix is too large or too small for a pool",
            ));
        }
        // Skip the network address (and for IPv4 the broadcast address).
        let first = to_u128(net.network()) + 1;
        let last = if family == 4 {
            to_u128(net.broadcast()) - 1
        } else {
            to_u128(net.broadcast())
        };
        (family, first, last, prefix)
    };
    if first > last || (family == 4 && last - first >= 1 << 20) {
        return Err(NodeError::invalid(
            "range",
            "the range is empty or larger than 2^20 addresses",
        ));
    }
    if (family == 4) != gateway_ip.is_ipv4() {
        return Err(bad_gateway());
    }
    Ok((family, first, last, prefix, gateway_ip))
}

impl Nodes {
    pub async fn create_pool(&self, caller: Caller, new: NewPool) -> Result<PoolView> {
        require_admin(caller)?;
        let name = validate::name("name", &new.name)?;
        let location = new
            .location
            .filter(|l| !l.trim().is_empty())
            .map(|l| validate::name("location", &l))
            .transpose()?;
        if new.node_id.is_none() && location.is_none() {
            return Err(NodeError::invalid(
                "node_id",
                "a pool belongs to a node or a location",
            ));
        }
        if let Some(id) = new.node_id {
            self.node_by_id(NodeId::stored(id)).await?;
        }
        let (family, first, last, prefix_len, gateway) = parse_range(&new.range, &new.gateway)?;
        // Overlapping pools could hand one address to two servers.
        for existing in store::pools::of_family(&self.db, family).await? {
            let parse = |a: &str| {
                a.parse::<IpAddr>()
                    .map(to_u128)
                    .map_err(|e| NodeError::Internal(e.into()))
            };
            let (other_first, other_last) = (parse(&existing.first)?, parse(&existing.last)?);
            if first <= other_last && other_first <= last {
                return Err(NodeError::Conflict(format!(
                    "the range overlaps pool {}",
                    existing.name
                )));
            }
        }
        let row = store::pools::NewPool {
            name,
            node_id: new.node_id,
            location,
            family,
            first: from_u128(family, first).to_string(),
            last: from_u128(family, last).to_string(),
            prefix_len,
            gateway: gateway.to_string(),
        };
        let row = store::pools::insert(&self.db, row, Utc::now()).await;
        let pool = match row {
            Ok(pool) => pool,
            Err(e) if is_unique_violation(&e) => {
                return Err(NodeError::Conflict(
                    "a pool with this name already exists".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        Ok(PoolView {
            size: last - first + 1,
            allocated: 0,
            pool,
        })
    }

    pub async fn list_pools(&self, caller: Caller) -> Result<Vec<PoolView>> {
        require_admin(caller)?;
        let mut out = Vec::new();
        for pool in store::pools::all(&self.db).await? {
            let allocated = store::pools::count_allocated(&self.db, pool.id).await?;
            let size = to_u128(
                pool.last
                    .parse()
                    .map_err(|e: std::net::AddrParseError| NodeError::Internal(e.into()))?,
            ) - to_u128(
                pool.first
                    .parse()
                    .map_err(|e: std::net::AddrParseError| NodeError::Internal(e.into()))?,
            ) + 1;
            out.push(PoolView {
                pool,
                size,
                allocated,
            });
        }
        Ok(out)
    }

    /// One address of `family` for `owner`, from the node's own pools first, then from its
    /// location's. The same owner gets the same address again.
    pub async fn allocate(
        &self,
        owner: &str,
        family: i32,
        node: NodeId,
    ) -> Result<AllocatedAddress> {
        if owner.trim().is_empty() || owner.len() > 128 {
            return Err(NodeError::invalid(
                "owner",
                "owner must be 1-128 characters",
            ));
        }
        if family != 4 && family != 6 {
            return Err(NodeError::invalid("family", "family must be 4 or 6"));
        }
        if let Some(found) = self.existing(owner, family).await? {
            return Ok(found);
        }
        let node: node::Model = self.node_by_id(node).await?;
        let pools = store::pools::serving(&self.db, family, node.id, &node.location).await?;
        for pool in pools {
            if let Some(found) = self.take_from(&pool, owner).await? {
                return Ok(found);
            }
        }
        Err(NodeError::NoAddress)
    }

    async fn existing(&self, owner: &str, family: i32) -> Result<Option<AllocatedAddress>> {
        let Some(row) = store::pools::held_by(&self.db, owner, family).await? else {
            return Ok(None);
        };
        let pool = store::pools::find(&self.db, row.pool_id)
            .await?
            .ok_or(NodeError::NotFound("pool"))?;
        Ok(Some(AllocatedAddress {
            address: row.address,
            pool,
            owner: row.owner,
        }))
    }

    async fn take_from(&self, pool: &pool::Model, owner: &str) -> Result<Option<AllocatedAddress>> {
        let parse = |s: &str| {
            s.parse::<IpAddr>()
                .map(to_u128)
                .map_err(|e| NodeError::Internal(e.into()))
        };
        let (first, last, gateway) = (
            parse(&pool.first)?,
            parse(&pool.last)?,
            parse(&pool.gateway)?,
        );
        let taken: HashSet<String> = store::pools::allocated(&self.db, pool.id)
            .await?
            .into_iter()
            .map(|a| a.address)
            .collect();
        let end = last.min(first.saturating_add(SCAN_LIMIT));
        let mut candidate = first;
        while candidate <= end {
            let address = from_u128(pool.family, candidate).to_string();
            candidate += 1;
            if candidate - 1 == gateway || taken.contains(&address) {
                continue;
            }
            let inserted =
                store::pools::allocate(&self.db, pool, &address, owner, Utc::now()).await;
            match inserted {
                Ok(_) => {
                    return Ok(Some(AllocatedAddress {
                        address,
                        pool: pool.clone(),
                        owner: owner.to_owned(),
                    }));
                }
                Err(e) if is_unique_violation(&e) => {
                    // Either the address was just taken (try the next) or this owner was just
                    // given one by a concurrent call (return that).
                    if let Some(found) = self.existing(owner, pool.family).await? {
                        return Ok(Some(found));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// Releases every address `owner` holds. Releasing nothing is not an error.
    pub async fn release_addresses(&self, owner: &str) -> Result<u64> {
        Ok(store::pools::release(&self.db, owner).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        let (family, first, last, prefix, gateway) =
            parse_range("10.0.3.0/24", "10.0.3.1").expect("cidr");
        assert_eq!((family, prefix), (4, 24));
        assert_eq!(from_u128(4, first).to_string(), "10.0.3.1");
        assert_eq!(from_u128(4, last).to_string(), "10.0.3.254");
        assert_eq!(gateway.to_string(), "10.0.3.1");
        let (_, first, last, prefix, _) =
            parse_range("192.0.2.10-192.0.2.20", "192.0.2.1/26").expect("range");
        assert_eq!((last - first + 1, prefix), (11, 26));
        let (family, _, _, prefix, _) = parse_range("2001:db8::/64", "2001:db8::1").expect("v6");
        assert_eq!((family, prefix), (6, 64));
        assert_eq!(netmask(4, 24), "255.255.255.0");
        assert_eq!(netmask(4, 26), "255.255.255.192");
    }

    #[test]
    fn bad_ranges_are_refused() {
        for (range, gateway) in [
            ("10.0.3.0/24", "2001:db8::1"),
            ("192.0.2.20-192.0.2.10", "192.0.2.1/24"),
            ("192.0.2.10-192.0.2.20", "192.0.2.1"),
            ("10.0.0.0/4", "10.0.0.1"),
            ("10.0.0.0/31", "10.0.0.1"),
            ("nonsense", "10.0.0.1"),
            ("10.0.0.0/8", "10.0.0.1"),
        ] {
            assert!(parse_range(range, gateway).is_err(), "{range} {gateway}");
        }
    }
}
