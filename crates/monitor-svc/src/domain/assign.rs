//! Which replica polls which node: rendezvous hashing over the live replicas, so each node
//! has one owner, a replica that leaves hands on only its own nodes, and one that joins
//! takes an even share. Node leases make sure no node is polled twice while replicas change.

/// FNV-1a: stable across builds and platforms, which the replicas must agree on.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // A final mix, so ids that differ in one bit land far apart.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

/// The replica (of `replicas`) that polls `node_id`.
pub fn owner(node_id: i64, replicas: &[String]) -> Option<&str> {
    replicas
        .iter()
        .max_by_key(|r| (fnv1a(&[r.as_bytes(), &node_id.to_le_bytes()]), r.as_str()))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("replica-{i}")).collect()
    }

    #[test]
    fn every_node_has_one_owner_and_shares_are_even() {
        let r = replicas(3);
        let mut counts = [0usize; 3];
        for node in 1..=300 {
            let o = owner(node, &r).expect("an owner");
            counts[r.iter().position(|x| x == o).expect("known")] += 1;
        }
        for c in counts {
            assert!((60..=140).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn a_leaving_replica_hands_on_only_its_own_nodes() {
        let three = replicas(3);
        let two: Vec<String> = three[..2].to_vec();
        for node in 1..=200 {
            let before = owner(node, &three).expect("an owner");
            let after = owner(node, &two).expect("an owner");
            if before != "replica-2" {
                assert_eq!(before, after, "node {node} moved");
            }
        }
        assert_eq!(owner(1, &[]), None);
    }
}
