//! Signed caller tokens: who is calling an internal gRPC service. The gateway mints them for
//! the users it authenticated, identity-svc for service accounts, and every service for its
//! own calls; every service verifies them on every call with [`Verifier`]. Nothing that
//! merely reaches a port is trusted: plain metadata such as `x-vps-user-id` means nothing.
//!
//! A token is a JWT signed with the issuer's own Ed25519 key (`alg: EdDSA`), so a service
//! that can verify tokens cannot mint them, and an issuer can only say what its role
//! allows: any issuer may speak for itself (`role: service`, `sub` = its name), only the
//! gateway and identity-svc may speak for a user. Its audience is the one service it is
//! meant for, and it lives a minute.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use moka::sync::Cache;
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::telemetry;

/// How long a minted token is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(60);
/// Clock skew tolerated between hosts.
const LEEWAY_SECS: u64 = 5;
/// A minted token is reused for this long (so it has at least half its life left when sent).
const REUSE: Duration = Duration::from_secs(30);
/// The metadata key that carries the token, as `Bearer <token>`.
pub const AUTHORIZATION: &str = "authorization";

/// The services of the control plane: the issuers and audiences of caller tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    Gateway,
    Identity,
    Server,
    Snapshot,
    Node,
    Monitor,
    Notify,
}

impl Service {
    pub const ALL: [Self; 7] = [
        Self::Gateway,
        Self::Identity,
        Self::Server,
        Self::Snapshot,
        Self::Node,
        Self::Monitor,
        Self::Notify,
    ];

    /// The name used as issuer, audience and key file name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Identity => "identity",
            Self::Server => "server",
            Self::Snapshot => "snapshot",
            Self::Node => "node",
            Self::Monitor => "monitor",
            Self::Notify => "notify",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The port it listens on by default: the gateway's HTTP, the others' gRPC.
    pub const fn default_port(self) -> u16 {
        match self {
            Self::Gateway => 5000,
            Self::Identity => 50051,
            Self::Server => 50052,
            Self::Snapshot => 50053,
            Self::Node => 50054,
            Self::Monitor => 50055,
            Self::Notify => 50056,
        }
    }

    /// Whether tokens from this issuer may speak for a user.
    const fn speaks_for_users(self) -> bool {
        matches!(self, Self::Gateway | Self::Identity)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a caller may do, as a set. End users act with every scope their role allows; a
/// service account carries the scopes an administrator gave it, and each service enforces
/// them where its rules live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scopes(u16);

impl Scopes {
    pub const SERVERS_READ: Self = Self(1);
    pub const SERVERS_WRITE: Self = Self(1 << 1);
    pub const ACCOUNT_READ: Self = Self(1 << 2);
    pub const ACCOUNT_WRITE: Self = Self(1 << 3);
    pub const NODES_READ: Self = Self(1 << 4);
    pub const NODES_WRITE: Self = Self(1 << 5);
    pub const NONE: Self = Self(0);
    pub const ALL: Self = Self((1 << 6) - 1);

    const NAMES: [(Self, &'static str); 6] = [
        (Self::SERVERS_READ, "servers:read"),
        (Self::SERVERS_WRITE, "servers:write"),
        (Self::ACCOUNT_READ, "account:read"),
        (Self::ACCOUNT_WRITE, "account:write"),
        (Self::NODES_READ, "nodes:read"),
        (Self::NODES_WRITE, "nodes:write"),
    ];

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The names of the scopes in the set, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .filter(|(s, _)| self.contains(*s))
            .map(|(_, n)| *n)
            .collect()
    }

    /// Every scope name there is.
    pub fn known() -> impl Iterator<Item = &'static str> {
        Self::NAMES.iter().map(|(_, n)| *n)
    }

    /// Parses scope names; the unknown name is the error.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut out = Self::NONE;
        for name in names {
            let (scope, _) = Self::NAMES
                .iter()
                .find(|(_, n)| *n == name)
                .ok_or_else(|| name.to_owned())?;
            out = out.union(*scope);
        }
        Ok(out)
    }
}

/// Who is calling. In a service this comes from a verified token; [`Caller::SYSTEM`] is the
/// service itself, for work it does on its own behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The user, for a user caller; 0 for a service.
    pub user_id: i64,
    /// A user with the administrator role, or this service itself ([`Caller::SYSTEM`]).
    pub admin: bool,
    /// Another service calling for itself. Services are not administrators: each rule says
    /// which services it admits.
    pub service: Option<Service>,
    pub scopes: Scopes,
    /// The service account a user caller acts through, if any.
    pub account: Option<i64>,
}

impl Caller {
    /// This service itself: in-process, it may do anything its own rules allow an
    /// administrator; on the wire it is signed as `role: service` with this service's name.
    pub const SYSTEM: Self = Self {
        user_id: 0,
        admin: true,
        service: None,
        scopes: Scopes::ALL,
        account: None,
    };

    /// An ordinary user with every scope.
    pub const fn user(user_id: i64) -> Self {
        Self {
            user_id,
            admin: false,
            service: None,
            scopes: Scopes::ALL,
            account: None,
        }
    }

    /// An administrator with every scope.
    pub const fn admin(user_id: i64) -> Self {
        Self {
            admin: true,
            ..Self::user(user_id)
        }
    }

    /// Another service, as a receiving service sees it.
    pub const fn service(service: Service) -> Self {
        Self {
            user_id: 0,
            admin: false,
            service: Some(service),
            scopes: Scopes::ALL,
            account: None,
        }
    }

    /// Whether this is the service itself (in-process).
    pub const fn is_system(&self) -> bool {
        self.user_id == 0 && self.service.is_none()
    }

    /// A user (of any role), not a service.
    pub const fn is_user(&self) -> bool {
        self.user_id > 0
    }

    /// Whether the caller is one of `services`.
    pub fn is_service_in(&self, services: &[Service]) -> bool {
        self.service.is_some_and(|s| services.contains(&s))
    }

    /// Wraps `message` in a request that carries this caller (the client's signing
    /// interceptor turns it into a token).
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.extensions_mut().insert(*self);
        request
    }

    /// The verified caller of a call: `UNAUTHENTICATED` when there is none.
    pub fn required<T>(request: &Request<T>) -> Result<Self, Status> {
        request
            .extensions()
            .get::<Self>()
            .copied()
            .ok_or_else(|| Status::unauthenticated("this call needs an authenticated caller"))
    }

    /// `PERMISSION_DENIED` unless the caller holds `scopes`.
    pub fn require_scopes(&self, scopes: Scopes) -> Result<(), Status> {
        if self.scopes.contains(scopes) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "this credential lacks the scope {}",
                scopes.names().join(", ")
            )))
        }
    }

    /// `PERMISSION_DENIED` unless the caller is one of `services`.
    pub fn require_service(&self, services: &[Service]) -> Result<(), Status> {
        if self.is_service_in(services) {
            Ok(())
        } else {
            Err(Status::permission_denied(
                "this call is reserved for the control plane's own services",
            ))
        }
    }

    /// For rules written in terms of users and administrators: a user holding `scopes` as
    /// is; one of `services` as this service's own system caller (the rules then let it do
    /// what the service itself may); any other caller is refused.
    pub fn user_or_service(&self, scopes: Scopes, services: &[Service]) -> Result<Self, Status> {
        if self.is_service_in(services) {
            return Ok(Self::SYSTEM);
        }
        if !self.is_user() {
            return Err(Status::permission_denied(
                "this call is not open to that service",
            ));
        }
        self.require_scopes(scopes)?;
        Ok(*self)
    }

    /// A user holding `scopes` (never a service).
    pub fn require_user(&self, scopes: Scopes) -> Result<Self, Status> {
        self.user_or_service(scopes, &[])
    }

    /// `PERMISSION_DENIED` for a service account: what only a person may do (minting
    /// credentials), so a scoped account cannot widen its own scopes.
    pub fn require_person(&self) -> Result<(), Status> {
        match self.account {
            None => Ok(()),
            Some(_) => Err(Status::permission_denied(
                "a service account cannot do this",
            )),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    iat: u64,
    exp: u64,
    /// `admin`, `user` or `service`.
    role: String,
    /// Space-separated scope names; absent means every scope of the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    /// The service account a user token was issued through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    act: Option<i64>,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A new Ed25519 key pair: (PKCS#8 private key, raw public key), each base64.
pub fn generate_key() -> anyhow::Result<(String, String)> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("generating an Ed25519 key failed"))?;
    let public = public_of(pkcs8.as_ref())?;
    Ok((STANDARD.encode(pkcs8.as_ref()), STANDARD.encode(public)))
}

fn public_of(pkcs8: &[u8]) -> anyhow::Result<Vec<u8>> {
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
        .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {e}"))?;
    Ok(pair.public_key().as_ref().to_vec())
}

/// The public half of a base64 PKCS#8 signing key, base64.
pub fn public_key_of(signing_key: &str) -> anyhow::Result<String> {
    let der = STANDARD
        .decode(signing_key.trim())
        .context("the signing key must be base64")?;
    Ok(STANDARD.encode(public_of(&der)?))
}

/// Signs caller tokens as one issuer, reusing a token for the same caller and audience for
/// half its life.
pub struct Minter {
    issuer: Service,
    key: EncodingKey,
    cache: Cache<(Caller, Service), MetadataValue<tonic::metadata::Ascii>>,
}

impl fmt::Debug for Minter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Minter")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Minter {
    /// From a base64 PKCS#8 Ed25519 key.
    pub fn new(issuer: Service, signing_key: &str) -> anyhow::Result<Self> {
        let der = STANDARD
            .decode(signing_key.trim())
            .context("the caller signing key must be base64")?;
        public_of(&der)?;
        Ok(Self {
            issuer,
            key: EncodingKey::from_ed_der(&der),
            cache: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(REUSE)
                .build(),
        })
    }

    /// A fresh token for `caller` to call `audience`, valid for `ttl` (at most [`TOKEN_TTL`]).
    pub fn mint(
        &self,
        caller: &Caller,
        audience: Service,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        self.mint_at(caller, audience, now_secs(), ttl)
    }

    /// [`Minter::mint`] as if it were `issued_at` (seconds since the epoch): for tests and
    /// drills that need a token from another moment, such as an expired one.
    pub fn mint_at(
        &self,
        caller: &Caller,
        audience: Service,
        issued_at: u64,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let (sub, role) = if caller.is_system() || caller.service == Some(self.issuer) {
            (self.issuer.name().to_owned(), "service")
        } else if let Some(other) = caller.service {
            anyhow::bail!("{} cannot sign as {other}", self.issuer);
        } else {
            anyhow::ensure!(
                self.issuer.speaks_for_users(),
                "{} cannot sign for users",
                self.issuer
            );
            anyhow::ensure!(caller.user_id > 0, "a user caller needs a user id");
            (
                caller.user_id.to_string(),
                if caller.admin { "admin" } else { "user" },
            )
        };
        let iat = issued_at;
        let claims = Claims {
            iss: self.issuer.name().to_owned(),
            aud: audience.name().to_owned(),
            sub,
            iat,
            exp: iat + ttl.min(TOKEN_TTL).as_secs(),
            role: role.to_owned(),
            scope: (role != "service" && caller.scopes != Scopes::ALL)
                .then(|| caller.scopes.names().join(" ")),
            act: caller.account,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            &self.key,
        )?)
    }

    /// The `authorization` metadata value for `caller` calling `audience`.
    fn bearer(
        &self,
        caller: &Caller,
        audience: Service,
    ) -> anyhow::Result<MetadataValue<tonic::metadata::Ascii>> {
        let key = (*caller, audience);
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let token = self.mint(caller, audience, TOKEN_TTL)?;
        let value: MetadataValue<tonic::metadata::Ascii> = format!("Bearer {token}").parse()?;
        self.cache.insert(key, value.clone());
        Ok(value)
    }
}

/// Client interceptor: signs the caller a request carries (see [`Caller::request`]) for the
/// service it goes to, and propagates the current trace. A request without a caller is
/// refused before it leaves.
#[derive(Clone, Debug)]
pub struct Sign {
    minter: Arc<Minter>,
    audience: Service,
}

impl Sign {
    pub fn new(minter: Arc<Minter>, audience: Service) -> Self {
        Self { minter, audience }
    }
}

impl Interceptor for Sign {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        telemetry::inject_current(request.metadata_mut());
        let caller = request
            .extensions()
            .get::<Caller>()
            .copied()
            .ok_or_else(|| Status::internal("an internal call names no caller"))?;
        let value = self.minter.bearer(&caller, self.audience).map_err(|e| {
            tracing::error!(error = %e, "cannot sign a caller token");
            Status::internal("cannot sign the caller")
        })?;
        request.metadata_mut().insert(AUTHORIZATION, value);
        Ok(request)
    }
}

/// Why a token was refused (told to the caller; never carries key material).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no caller token")]
    Missing,
    #[error("malformed caller token")]
    Malformed,
    #[error("caller token from an unknown issuer")]
    UnknownIssuer,
    #[error("invalid caller token")]
    Invalid,
    #[error("the caller token has expired")]
    Expired,
    #[error("the caller token is meant for another service")]
    WrongAudience,
    #[error("the caller token claims more than its issuer may")]
    Overreach,
}

/// Verifies caller tokens for one audience, with a cache of tokens already verified (each
/// still checked for expiry on every use).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<VerifierInner>,
}

struct VerifierInner {
    audience: Service,
    /// Each issuer's keys: one, or two while its key is being changed.
    keys: BTreeMap<Service, Vec<DecodingKey>>,
    verified: Cache<Arc<str>, (Caller, u64)>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("audience", &self.inner.audience)
            .field("issuers", &self.inner.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Verifier {
    /// Accepts tokens for `audience` signed by the issuers in `trusted`: raw Ed25519 public
    /// keys, base64, several for one issuer separated by white space or commas (while its
    /// key is changed, the old and the new).
    pub fn new(audience: Service, trusted: &BTreeMap<Service, String>) -> anyhow::Result<Self> {
        let mut keys = BTreeMap::new();
        for (issuer, publics) in trusted {
            let mut issuer_keys = Vec::new();
            for public in publics.split(|c: char| c.is_whitespace() || c == ',') {
                if public.is_empty() {
                    continue;
                }
                let raw = STANDARD
                    .decode(public)
                    .with_context(|| format!("the public key of {issuer} must be base64"))?;
                anyhow::ensure!(
                    raw.len() == 32,
                    "the public key of {issuer} must be 32 bytes (an Ed25519 public key)"
                );
                issuer_keys.push(DecodingKey::from_ed_der(&raw));
            }
            anyhow::ensure!(
                !issuer_keys.is_empty(),
                "no public key is given for {issuer}"
            );
            keys.insert(*issuer, issuer_keys);
        }
        Ok(Self {
            inner: Arc::new(VerifierInner {
                audience,
                keys,
                verified: Cache::builder()
                    .max_capacity(100_000)
                    .time_to_live(TOKEN_TTL + Duration::from_secs(LEEWAY_SECS))
                    .build(),
            }),
        })
    }

    /// The caller a token speaks for.
    pub fn verify(&self, token: &str) -> Result<Caller, TokenError> {
        let now = now_secs();
        if let Some((caller, exp)) = self.inner.verified.get(token) {
            return if now <= exp + LEEWAY_SECS {
                Ok(caller)
            } else {
                Err(TokenError::Expired)
            };
        }
        let (caller, exp) = self.verify_uncached(token, now)?;
        self.inner.verified.insert(Arc::from(token), (caller, exp));
        Ok(caller)
    }

    fn verify_uncached(&self, token: &str, now: u64) -> Result<(Caller, u64), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let issuer = unverified_issuer(token).ok_or(TokenError::Malformed)?;
        let keys = self
            .inner
            .keys
            .get(&issuer)
            .ok_or(TokenError::UnknownIssuer)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.set_issuer(&[issuer.name()]);
        validation.set_audience(&[self.inner.audience.name()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // The signature is checked before the claims: a token signed with another of the
        // issuer's keys fails with `InvalidSignature` and the next key is tried.
        let mut decoded = Err(TokenError::Invalid);
        for key in keys {
            decoded = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| match e
                .kind()
            {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                jsonwebtoken::errors::ErrorKind::InvalidAudience => TokenError::WrongAudience,
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenError::Invalid,
                _ => TokenError::Malformed,
            });
            if !matches!(decoded, Err(TokenError::Invalid)) {
                break;
            }
        }
        let claims = decoded
            .map_err(|e| match e {
                TokenError::Malformed => TokenError::Invalid,
                other => other,
            })?
            .claims;
        // A token may not outlive the longest life an issuer gives.
        if claims.exp > now + TOKEN_TTL.as_secs() + LEEWAY_SECS || claims.iat > now + LEEWAY_SECS {
            return Err(TokenError::Invalid);
        }
        let scopes = match &claims.scope {
            None => Scopes::ALL,
            Some(list) => {
                Scopes::parse(list.split_whitespace()).map_err(|_| TokenError::Invalid)?
            }
        };
        let caller = match claims.role.as_str() {
            "service" if claims.sub == issuer.name() && claims.act.is_none() => {
                Caller::service(issuer)
            }
            "admin" | "user" if issuer.speaks_for_users() => {
                let user_id = claims
                    .sub
                    .parse::<i64>()
                    .ok()
                    .filter(|id| *id > 0)
                    .ok_or(TokenError::Invalid)?;
                Caller {
                    user_id,
                    admin: claims.role == "admin",
                    service: None,
                    scopes,
                    account: claims.act,
                }
            }
            _ => return Err(TokenError::Overreach),
        };
        Ok((caller, claims.exp))
    }
}

/// The `iss` claim, read before the signature is checked so the right key can be chosen.
fn unverified_issuer(token: &str) -> Option<Service> {
    #[derive(Deserialize)]
    struct Iss {
        iss: String,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let iss: Iss = serde_json::from_slice(&bytes).ok()?;
    Service::parse(&iss.iss)
}

/// Server interceptor: every call must carry a valid token for this service; the verified
/// [`Caller`] goes into the request's extensions for the handler ([`Caller::required`]).
impl Interceptor for Verifier {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let token = request
            .metadata()
            .get(AUTHORIZATION)
            .ok_or(TokenError::Missing)
            .and_then(|v| v.to_str().map_err(|_| TokenError::Malformed))
            .and_then(|v| v.strip_prefix("Bearer ").ok_or(TokenError::Malformed));
        let caller = token
            .and_then(|token| self.verify(token.trim()))
            .map_err(|e| Status::unauthenticated(e.to_string()))?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

/// Where a service finds its caller-token keys (`[caller]` in its configuration, or
/// `VPS_CALLER__*`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct KeyConfig {
    /// This service's Ed25519 signing key: PKCS#8 DER, base64.
    pub signing_key: Option<SecretString>,
    /// Or a file holding it (for a mounted secret).
    pub signing_key_file: Option<PathBuf>,
    /// The public keys (raw Ed25519, base64) of the issuers whose tokens this service
    /// accepts, by issuer name (`gateway`, `identity`, `server`, ...); two for one issuer,
    /// separated by a space or comma, while its key is changed.
    pub trusted: BTreeMap<String, String>,
    /// Or a directory of `<issuer>.pub` files, each holding one such key (or two, a line
    /// each, while it is changed).
    pub trusted_dir: Option<PathBuf>,
}

/// The caller-token machinery of one service.
#[derive(Clone, Debug)]
pub struct CallerAuth {
    pub minter: Arc<Minter>,
    pub verifier: Verifier,
}

impl CallerAuth {
    /// Loads `service`'s keys from its configuration.
    pub fn load(service: Service, config: &KeyConfig) -> anyhow::Result<Self> {
        let signing_key = match (&config.signing_key, &config.signing_key_file) {
            (Some(key), _) => key.expose_secret().to_owned(),
            (None, Some(path)) => read_trimmed(path)?,
            (None, None) => anyhow::bail!(
                "{service} needs a caller signing key (caller.signing_key or caller.signing_key_file; \
                 `vps-stack keygen DIR` makes one per service)"
            ),
        };
        let mut trusted = BTreeMap::new();
        if let Some(dir) = &config.trusted_dir {
            for issuer in Service::ALL {
                let path = dir.join(format!("{}.pub", issuer.name()));
                if path.is_file() {
                    trusted.insert(issuer, read_trimmed(&path)?);
                }
            }
        }
        for (name, key) in &config.trusted {
            let issuer = Service::parse(name)
                .with_context(|| format!("caller.trusted names an unknown service {name:?}"))?;
            trusted.insert(issuer, key.clone());
        }
        // A service always trusts itself (its own calls to itself, and the tests' checks),
        // besides what it is told to trust of itself (its replicas' other key mid-change).
        let own = public_key_of(&signing_key)?;
        let mine = trusted.entry(service).or_default();
        if !mine.split_whitespace().any(|k| k == own) {
            mine.push(' ');
            mine.push_str(&own);
        }
        Ok(Self {
            minter: Arc::new(Minter::new(service, &signing_key)?),
            verifier: Verifier::new(service, &trusted)?,
        })
    }

    /// The client interceptor for calls to `audience`.
    pub fn sign_for(&self, audience: Service) -> Sign {
        Sign::new(self.minter.clone(), audience)
    }
}

fn read_trimmed(path: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned())
}

/// A full set of keys for every service, as the embedded stack and the tests use: each
/// service signs with its own key and trusts every other's public key.
#[derive(Clone, Debug)]
pub struct KeySet {
    pub signing: BTreeMap<Service, SecretString>,
    pub public: BTreeMap<String, String>,
}

impl KeySet {
    /// Fresh keys for every service.
    pub fn generate() -> anyhow::Result<Self> {
        let mut signing = BTreeMap::new();
        let mut public = BTreeMap::new();
        for service in Service::ALL {
            let (private, public_key) = generate_key()?;
            signing.insert(service, SecretString::from(private));
            public.insert(service.name().to_owned(), public_key);
        }
        Ok(Self { signing, public })
    }

    /// Keys kept in `dir` (`<service>.key`, 0600, and `<service>.pub`), made on first use.
    pub fn kept_in(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut signing = BTreeMap::new();
        let mut public = BTreeMap::new();
        for service in Service::ALL {
            let key_path = dir.join(format!("{}.key", service.name()));
            let private = if key_path.is_file() {
                read_trimmed(&key_path)?
            } else {
                let (private, _) = generate_key()?;
                crate::config::write_private(&key_path, &private)?;
                private
            };
            let public_key = public_key_of(&private)
                .with_context(|| format!("{} is not a signing key", key_path.display()))?;
            let pub_path = dir.join(format!("{}.pub", service.name()));
            std::fs::write(&pub_path, format!("{public_key}\n"))
                .with_context(|| format!("writing {}", pub_path.display()))?;
            signing.insert(service, SecretString::from(private));
            public.insert(service.name().to_owned(), public_key);
        }
        Ok(Self { signing, public })
    }

    /// The key configuration of `service`.
    pub fn config_for(&self, service: Service) -> KeyConfig {
        KeyConfig {
            signing_key: self.signing.get(&service).cloned(),
            signing_key_file: None,
            trusted: self.public.clone(),
            trusted_dir: None,
        }
    }

    /// A minter that signs as `service` (tests sign as the gateway for users, or as a
    /// service for service calls).
    pub fn minter(&self, service: Service) -> anyhow::Result<Arc<Minter>> {
        let key = self
            .signing
            .get(&service)
            .context("no key for that service")?;
        Ok(Arc::new(Minter::new(service, key.expose_secret())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> KeySet {
        KeySet::generate().expect("keys")
    }

    fn verifier(keys: &KeySet, audience: Service) -> Verifier {
        CallerAuth::load(audience, &keys.config_for(audience))
            .expect("auth")
            .verifier
    }

    #[test]
    fn a_gateway_token_for_a_user_round_trips() {
        let keys = keys();
        let gateway = keys.minter(Service::Gateway).expect("minter");
        let token = gateway
            .mint(&Caller::admin(7), Service::Server, TOKEN_TTL)
            .expect("mint");
        let caller = verifier(&keys, Service::Server)
            .verify(&token)
            .expect("valid");
        assert_eq!(caller, Caller::admin(7));
        // Cached: the second verification answers the same.
        assert_eq!(
            verifier(&keys, Service::Server)
                .verify(&token)
                .expect("valid"),
            caller
        );
    }

    /// A key change without downtime: trust the old and new key, sign with the new, then
    /// trust the new one only.
    #[test]
    fn an_issuer_key_changes_with_both_keys_trusted_in_between() {
        let (old_private, old_public) = generate_key().expect("old key");
        let (new_private, new_public) = generate_key().expect("new key");
        let old = Minter::new(Service::Gateway, &old_private).expect("old minter");
        let new = Minter::new(Service::Gateway, &new_private).expect("new minter");
        let mint = |minter: &Minter| {
            minter
                .mint(&Caller::user(5), Service::Server, TOKEN_TTL)
                .expect("mint")
        };
        let trusting = |keys: &str| {
            let mut config = KeyConfig {
                signing_key: Some(generate_key().expect("server key").0.into()),
                ..KeyConfig::default()
            };
            config.trusted.insert("gateway".to_owned(), keys.to_owned());
            CallerAuth::load(Service::Server, &config)
                .expect("auth")
                .verifier
        };
        let before = trusting(&old_public);
        let during = trusting(&format!("{old_public} {new_public}"));
        let also_during = trusting(&format!("{new_public},{old_public}"));
        let after = trusting(&new_public);

        assert!(before.verify(&mint(&old)).is_ok());
        assert!(matches!(
            before.verify(&mint(&new)),
            Err(TokenError::Invalid)
        ));
        for verifier in [&during, &also_during] {
            assert_eq!(
                verifier.verify(&mint(&old)).expect("old key"),
                Caller::user(5)
            );
            assert_eq!(
                verifier.verify(&mint(&new)).expect("new key"),
                Caller::user(5)
            );
        }
        assert!(after.verify(&mint(&new)).is_ok());
        assert!(matches!(
            after.verify(&mint(&old)),
            Err(TokenError::Invalid)
        ));
        // A token for another service is refused as such whichever key signed it.
        let elsewhere = new
            .mint(&Caller::user(5), Service::Node, TOKEN_TTL)
            .expect("mint");
        assert!(matches!(
            during.verify(&elsewhere),
            Err(TokenError::WrongAudience)
        ));
    }

    #[test]
    fn scopes_and_accounts_travel() {
        let keys = keys();
        let identity = keys.minter(Service::Identity).expect("minter");
        let caller = Caller {
            scopes: Scopes::SERVERS_READ,
            account: Some(3),
            ..Caller::user(9)
        };
        let token = identity
            .mint(&caller, Service::Server, TOKEN_TTL)
            .expect("mint");
        let seen = verifier(&keys, Service::Server)
            .verify(&token)
            .expect("valid");
        assert_eq!(seen, caller);
        assert!(seen.require_scopes(Scopes::SERVERS_WRITE).is_err());
        assert!(seen.require_scopes(Scopes::SERVERS_READ).is_ok());
    }

    #[test]
    fn a_service_speaks_only_for_itself() {
        let keys = keys();
        let server = keys.minter(Service::Server).expect("minter");
        let token = server
            .mint(&Caller::SYSTEM, Service::Node, TOKEN_TTL)
            .expect("mint");
        assert_eq!(
            verifier(&keys, Service::Node)
                .verify(&token)
                .expect("valid"),
            Caller::service(Service::Server)
        );
        assert!(
            server
                .mint(&Caller::user(1), Service::Node, TOKEN_TTL)
                .is_err()
        );
        assert!(
            server
                .mint(&Caller::service(Service::Gateway), Service::Node, TOKEN_TTL)
                .is_err()
        );
    }

    #[test]
    fn a_user_token_signed_by_a_plain_service_overreaches() {
        let keys = keys();
        // Hand-made claims, signed with node-svc's own key: a service may not speak for users.
        let iat = now_secs();
        let claims = Claims {
            iss: "node".into(),
            aud: "identity".into(),
            sub: "1".into(),
            iat,
            exp: iat + 60,
            role: "admin".into(),
            scope: None,
            act: None,
        };
        let key = EncodingKey::from_ed_der(
            &STANDARD
                .decode(keys.signing[&Service::Node].expose_secret())
                .expect("der"),
        );
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).expect("encode");
        assert!(matches!(
            verifier(&keys, Service::Identity).verify(&token),
            Err(TokenError::Overreach)
        ));
    }

    #[test]
    fn wrong_audience_foreign_keys_and_garbage_are_refused() {
        let keys = keys();
        let gateway = keys.minter(Service::Gateway).expect("minter");
        let token = gateway
            .mint(&Caller::user(2), Service::Server, TOKEN_TTL)
            .expect("mint");
        assert!(matches!(
            verifier(&keys, Service::Identity).verify(&token),
            Err(TokenError::WrongAudience)
        ));
        let other = KeySet::generate().expect("keys");
        assert!(matches!(
            verifier(&other, Service::Server).verify(&token),
            Err(TokenError::Invalid)
        ));
        for garbage in ["", "a.b.c", "Bearer x", "eyJhbGciOiJIUzI1NiJ9.e30.x"] {
            assert!(verifier(&keys, Service::Server).verify(garbage).is_err());
        }
    }

    #[test]
    fn expired_and_overlong_tokens_are_refused() {
        let keys = keys();
        let sign = |iat: u64, exp: u64| {
            let claims = Claims {
                iss: "gateway".into(),
                aud: "server".into(),
                sub: "1".into(),
                iat,
                exp,
                role: "user".into(),
                scope: None,
                act: None,
            };
            let key = EncodingKey::from_ed_der(
                &STANDARD
                    .decode(keys.signing[&Service::Gateway].expose_secret())
                    .expect("der"),
            );
            jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &key).expect("encode")
        };
        let now = now_secs();
        assert!(matches!(
            verifier(&keys, Service::Server).verify(&sign(now - 200, now - 100)),
            Err(TokenError::Expired)
        ));
        assert!(matches!(
            verifier(&keys, Service::Server).verify(&sign(now, now + 3600)),
            Err(TokenError::Invalid)
        ));
        assert!(
            verifier(&keys, Service::Server)
                .verify(&sign(now, now + 30))
                .is_ok()
        );
    }

    #[test]
    fn scope_names_parse_and_print() {
        let scopes = Scopes::parse(["servers:read", "nodes:write"]).expect("known");
        assert_eq!(scopes.names(), vec!["servers:read", "nodes:write"]);
        assert_eq!(Scopes::parse(["root"]), Err("root".to_owned()));
        assert_eq!(Scopes::ALL.names().len(), Scopes::known().count());
    }

    #[test]
    fn kept_keys_survive_a_restart() {
        let dir = tempfile::tempdir().expect("dir");
        let first = KeySet::kept_in(dir.path()).expect("keys");
        let second = KeySet::kept_in(dir.path()).expect("keys");
        assert_eq!(first.public, second.public);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("gateway.key"))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
