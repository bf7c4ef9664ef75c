//! Webhooks by the Standard Webhooks specification (<https://www.standardwebhooks.com>):
//! what an event is called, what a delivery carries and how it is signed, which
//! destinations are refused, and when a failed delivery is tried again. Free of I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The prefix of a signing secret, as the specification writes it.
pub const SECRET_PREFIX: &str = "whsec_";

/// The event types an endpoint may ask for (the contract's list).
pub use proto::events::v1::WEBHOOK_EVENT_TYPES as EVENT_TYPES;

/// An event's type for webhooks: `vps.events.server.created` is `server.created`, an alert
/// on `vps.alerts.<id>` is `alert.fired` or `alert.resolved`.
pub fn event_type(subject: &str, payload: &serde_json::Value) -> Option<String> {
    let name = if let Some(rest) = subject.strip_prefix("vps.events.") {
        rest.to_owned()
    } else if subject.starts_with("vps.alerts.") {
        format!("alert.{}", payload["type"].as_str()?)
    } else {
        return None;
    };
    EVENT_TYPES.contains(&name.as_str()).then_some(name)
}

/// A fresh signing secret: 24 random bytes, as `whsec_<base64>`.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_` secret.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .ok()
}

/// The `webhook-signature` header: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
pub fn signature(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(msg_id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
}

/// The body of a delivery: the event's type, when it happened, and the event itself.
pub fn payload(event_type: &str, event: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "type": event_type,
        "timestamp": event["at"],
        "data": event,
    })
}

/// Why an endpoint's address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the URL is not valid: {0}")]
    Malformed(String),
    #[error("the URL must use https")]
    NotHttps,
    #[error("the URL must not carry a user or password")]
    Credentials,
    #[error("the URL is longer than {0} characters")]
    TooLong(usize),
    #[error("{0} is a loopback, private, link-local or otherwise internal address")]
    Internal(IpAddr),
}

pub const URL_MAX: usize = 2000;

/// Checks an endpoint's URL as registered: https (plain http only where internal
/// destinations are allowed), no credentials, a host; an IP address must be public
/// (names are checked each time they are resolved).
pub fn check_url(url: &str, allow_internal: bool) -> Result<reqwest::Url, Refused> {
    if url.chars().count() > URL_MAX {
        return Err(Refused::TooLong(URL_MAX));
    }
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| Refused::Malformed(e.to_string()))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_internal => {}
        _ => return Err(Refused::NotHttps),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Refused::Credentials);
    }
    match parsed.host() {
        None => return Err(Refused::Malformed("the URL has no host".to_owned())),
        Some(url::Host::Ipv4(ip)) => allowed(IpAddr::V4(ip), allow_internal)?,
        Some(url::Host::Ipv6(ip)) => allowed(IpAddr::V6(ip), allow_internal)?,
        Some(url::Host::Domain(_)) => {}
    }
    Ok(parsed)
}

/// Refuses an address no webhook may reach: loopback, private, link-local (the cloud
/// metadata service among them), shared, multicast and reserved ranges, in IPv4 and IPv6
/// (an IPv4 address inside IPv6 is judged as IPv4), unless the deployment allows them.
pub fn allowed(ip: IpAddr, allow_internal: bool) -> Result<(), Refused> {
    if allow_internal || is_public(ip) {
        Ok(())
    } else {
        Err(Refused::Internal(ip))
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let first = v6.segments()[0];
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b, c, d] = v6.octets();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)) // metadata (AWS v6)
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    !(v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// The waits between attempts: after the first attempt fails, the second comes after
/// `schedule[0]`, and so on; when the schedule is spent the delivery has failed.
pub fn next_wait(schedule: &[u64], attempts_made: u32) -> Option<Duration> {
    let index = usize::try_from(attempts_made).ok()?.checked_sub(1)?;
    schedule.get(index).map(|secs| Duration::from_secs(*secs))
}

/// The default schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 20 h; the last
/// attempt comes about three days after the first.
pub const DEFAULT_SCHEDULE: &[u64] = &[5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 72_000];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_specifications() {
        // The specification's own example (standard-webhooks/spec, "Verifying").
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_new_secret_is_24_random_bytes() {
        let one = new_secret();
        assert!(one.starts_with("whsec_"));
        assert_eq!(secret_key(&one).unwrap().len(), 24);
        assert_ne!(one, new_secret());
    }

    #[test]
    fn internal_destinations_are_refused_unless_allowed() {
        for bad in [
            "http://example.com/hook",
            "https://user:pw@example.com/hook",
            "https://127.0.0.1/hook",
            "https://10.0.3.5/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[::ffff:192.168.1.1]/hook",
            "https://[fd00::1]/hook",
            "https://[fe80::1]/hook",
            "https://100.64.0.1/hook",
            "https://0.0.0.0/hook",
            "ftp://example.com/hook",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        for good in ["https://example.com/hook", "https://93.184.216.34:8443/x"] {
            assert!(check_url(good, false).is_ok(), "{good}");
        }
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok());
        assert!(allowed("64:ff9b::a00:1".parse().unwrap(), false).is_err());
        assert!(allowed("2606:4700::1111".parse().unwrap(), false).is_ok());
    }

    #[test]
    fn events_are_named_by_their_subject() {
        let alert = serde_json::json!({"type": "fired"});
        assert_eq!(
            event_type("vps.events.server.created", &alert).as_deref(),
            Some("server.created")
        );
        assert_eq!(
            event_type("vps.alerts.7", &alert).as_deref(),
            Some("alert.fired")
        );
        assert_eq!(event_type("vps.events.unknown.thing", &alert), None);
        assert_eq!(event_type("vps.stats.7", &alert), None);
    }

    #[test]
    fn the_default_schedule_spans_about_three_days() {
        let total: u64 = DEFAULT_SCHEDULE.iter().sum();
        assert!((60 * 3600..=80 * 3600).contains(&total), "{total}");
        assert_eq!(next_wait(DEFAULT_SCHEDULE, 1), Some(Duration::from_secs(5)));
        assert_eq!(
            next_wait(DEFAULT_SCHEDULE, 9),
            Some(Duration::from_secs(72_000))
        );
        assert_eq!(next_wait(DEFAULT_SCHEDULE, 10), None);
        assert_eq!(next_wait(&[], 1), None);
    }
}
