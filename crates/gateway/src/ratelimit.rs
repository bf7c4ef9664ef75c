//! Per-client-address rate limits (GCRA via `governor`), answered with 429 and Retry-After.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::dialects::DialectKind;
use crate::error::ApiError;
use crate::state::AppState;

pub struct RateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimit {
    pub fn per_minute(rate: u32, burst: u32) -> anyhow::Result<Self> {
        let rate = NonZeroU32::new(rate)
            .ok_or_else(|| anyhow::anyhow!("auth_rate_per_minute must be positive"))?;
        let burst = NonZeroU32::new(burst)
            .ok_or_else(|| anyhow::anyhow!("auth_rate_burst must be positive"))?;
        Ok(Self {
            limiter: RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
        })
    }

    /// `Ok` if `client` may go ahead, else how many seconds to wait.
    pub fn check(&self, client: IpAddr) -> Result<(), u64> {
        self.limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Drops state for clients that are back to a full allowance.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The client's address: the socket peer, or the last `X-Forwarded-For` hop when configured.
pub fn client_ip(
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    trust_forwarded_for: bool,
) -> IpAddr {
    if trust_forwarded_for {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .next_back();
        if let Some(ip) = forwarded {
            return ip;
        }
    }
    peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip())
}

/// Middleware for the login, registration, refresh and token-minting routes.
pub async fn limit_auth(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = client_ip(request.headers(), peer, state.config.trust_forwarded_for);
    match state.auth_rate.check(ip) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let dialect = DialectKind::for_path(request.uri().path());
            let mut error = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests; try again later",
            );
            error.retry_after_secs = Some(wait.max(1));
            error.render(dialect).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_is_allowed_then_the_client_waits() {
        let limit = RateLimit::per_minute(6, 2).expect("valid");
        let a = IpAddr::from([127, 0, 0, 2]);
        let b = IpAddr::from([127, 0, 0, 3]);
        assert!(limit.check(a).is_ok());
        assert!(limit.check(a).is_ok());
        let wait = limit.check(a).expect_err("third request is limited");
        assert!((1..=10).contains(&wait), "waits about 10 s, got {wait}");
        assert!(limit.check(b).is_ok(), "other clients are unaffected");
    }

    #[test]
    fn forwarded_for_is_used_only_when_trusted() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.7".parse().expect("header"),
        );
        let peer = Some(SocketAddr::from(([127, 0, 0, 1], 4000)));
        assert_eq!(
            client_ip(&headers, peer, false),
            IpAddr::from([127, 0, 0, 1])
        );
        assert_eq!(
            client_ip(&headers, peer, true),
            IpAddr::from([198, 51, 100, 7])
        );
    }
}
