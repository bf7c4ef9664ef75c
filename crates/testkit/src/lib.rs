//! Helpers shared by test code across the workspace's crates.
//!
//! Test servers that must keep their port across a restart (a killed NATS server coming back,
//! a cluster's routes naming each other) cannot bind port 0. Their ports come from here:
//! below the kernel's ephemeral range (32768 and up by default), so no outgoing connection is
//! handed one between the check and the server's bind, and held by a lock file for the life
//! of the test process, so two test processes never pick the same one.

use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;

const FIRST: usize = 20_000;
const COUNT: usize = 12_000;

/// The lock files of the ports this process holds; released when it exits.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

fn lock_dir() -> PathBuf {
    let dir = std::env::temp_dir().join("vps-test-ports");
    std::fs::create_dir_all(&dir).expect("the test ports' lock directory");
    dir
}

/// A free loopback port below the ephemeral range, held by this process until it exits.
pub fn free_port() -> u16 {
    let dir = lock_dir();
    let start = (std::process::id() as usize).wrapping_mul(97) % COUNT;
    for offset in 0..COUNT {
        let port = u16::try_from(FIRST + (start + offset) % COUNT).expect("a port");
        let Ok(file) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
        else {
            continue;
        };
        // Another process (or an earlier call here) holds it.
        if file.try_lock().is_err() {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
            return port;
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + COUNT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice() {
        let ports: Vec<u16> = (0..20).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "{ports:?}");
        for port in ports {
            assert!((FIRST..FIRST + COUNT).contains(&usize::from(port)));
            // Its lock is held: a second open file cannot take it.
            let again = File::options()
                .write(true)
                .open(lock_dir().join(port.to_string()))
                .expect("lock file");
            assert!(again.try_lock().is_err(), "port {port} is not held");
        }
    }
}
