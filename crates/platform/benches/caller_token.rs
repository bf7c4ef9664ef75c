//! What a signed caller token costs per gRPC call, on this machine: minting one (Ed25519
//! signature), verifying one the service has not seen (signature and claims), verifying one
//! it has (the cache), and the client interceptor's path with a token it can reuse.
//! Run: `cargo bench -p platform --bench caller_token` (ROUNDS, default 20000).

use std::time::Instant;

use platform::auth::{Caller, CallerAuth, KeySet, Service, Sign, TOKEN_TTL};
use tonic::service::Interceptor as _;

fn per_op(started: Instant, rounds: u32) -> String {
    let each = started.elapsed() / rounds;
    format!("{:>8.2} µs", each.as_secs_f64() * 1e6)
}

fn main() {
    let rounds: u32 = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20_000);
    let keys = KeySet::generate().expect("keys");
    let gateway = keys.minter(Service::Gateway).expect("minter");
    let server =
        CallerAuth::load(Service::Server, &keys.config_for(Service::Server)).expect("auth");

    // Distinct callers, so every token is new to the verifier.
    let started = Instant::now();
    let tokens: Vec<String> = (1..=i64::from(rounds))
        .map(|user| {
            gateway
                .mint(&Caller::user(user), Service::Server, TOKEN_TTL)
                .expect("mint")
        })
        .collect();
    println!(
        "mint a token (Ed25519 sign):            {}",
        per_op(started, rounds)
    );

    let started = Instant::now();
    for token in &tokens {
        server.verifier.verify(token).expect("valid");
    }
    println!(
        "verify a new token (Ed25519 + claims):  {}",
        per_op(started, rounds)
    );

    let started = Instant::now();
    for token in &tokens {
        server.verifier.verify(token).expect("valid");
    }
    println!(
        "verify a token seen before (cache):     {}",
        per_op(started, rounds)
    );

    let mut sign = Sign::new(gateway.clone(), Service::Server);
    let caller = Caller::admin(1);
    let started = Instant::now();
    for _ in 0..rounds {
        let mut request = caller.request(());
        request = sign.call(request).expect("signed");
        std::hint::black_box(request);
    }
    println!(
        "client interceptor, token reused:       {}",
        per_op(started, rounds)
    );

    let token = tokens[0].clone();
    let mut verifier = server.verifier.clone();
    let started = Instant::now();
    for _ in 0..rounds {
        let mut request = tonic::Request::new(());
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
        std::hint::black_box(
            tonic::service::Interceptor::call(&mut verifier, request).expect("verified"),
        );
    }
    println!(
        "server interceptor, token seen before:  {}",
        per_op(started, rounds)
    );
}
