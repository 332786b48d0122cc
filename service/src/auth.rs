//! Access control: bearer tokens, roles, and the one table of who may call what.
//!
//! Callers send `authorization: Bearer <token>` metadata. Each configured
//! token has a name (it identifies the caller in the audit log) and a
//! [`Role`]; [`METHOD_ROLES`] says which roles may call each method of the
//! contract. [`AuthLayer`] enforces the table once, in front of the router, for
//! all three contract services; health and reflection stay open so Kubernetes
//! probes and contract tools keep working. Denials are audited (who, which
//! method, why — never the request body) and counted.
//!
//! Tokens are configured only as salted hashes (see [`TokenHash`]), so a leaked
//! config file or environment does not leak a usable credential.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};

use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::codegen::http;
use tonic::Status;
use tower::{Layer, Service};
use tracing::{info, warn};

use crate::error::ServiceError;
use crate::store::Store;
use crate::telemetry;

/// What a caller is for; each token has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The shop's storefront: answers shoppers and searches the FAQ.
    Storefront,
    /// The agents' desk: drafts, feedback and the handoff queue.
    Helpdesk,
    /// Operators: everything, including reloading the knowledge base.
    Admin,
}

impl Role {
    /// The name used in config files, `XIAOER_TOKENS` and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Storefront => "storefront",
            Role::Helpdesk => "helpdesk",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = TokenConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "storefront" => Ok(Role::Storefront),
            "helpdesk" => Ok(Role::Helpdesk),
            "admin" => Ok(Role::Admin),
            other => Err(TokenConfigError::UnknownRole(other.to_string())),
        }
    }
}

use Role::{Admin, Helpdesk, Storefront};

/// Every method of the contract with the roles allowed to call it. A method
/// missing here is refused for everyone (and fails the unit test that compares
/// this table with the compiled contract), so a new RPC cannot ship open.
pub const METHOD_ROLES: &[(&str, &[Role])] = &[
    ("/xiaoer.v1.AutoReply/Reply", &[Storefront, Admin]),
    ("/xiaoer.v1.AutoReply/Classify", &[Storefront, Admin]),
    ("/xiaoer.v1.AutoReply/SuggestReplies", &[Helpdesk, Admin]),
    ("/xiaoer.v1.AutoReply/Feedback", &[Helpdesk, Admin]),
    ("/xiaoer.v1.AutoReply/RateReply", &[Storefront, Admin]),
    (
        "/xiaoer.v1.AutoReply/WatchConversation",
        &[Storefront, Admin],
    ),
    ("/xiaoer.v1.Handoffs/ListHandoffs", &[Helpdesk, Admin]),
    ("/xiaoer.v1.Handoffs/GetHandoff", &[Helpdesk, Admin]),
    ("/xiaoer.v1.Handoffs/ClaimHandoff", &[Helpdesk, Admin]),
    ("/xiaoer.v1.Handoffs/ResolveHandoff", &[Helpdesk, Admin]),
    ("/xiaoer.v1.Handoffs/WatchHandoffs", &[Helpdesk, Admin]),
    ("/xiaoer.v1.Handoffs/PostAgentMessage", &[Helpdesk, Admin]),
    ("/xiaoer.v1.KnowledgeBase/Search", &[Storefront, Admin]),
    ("/xiaoer.v1.KnowledgeBase/Reload", &[Admin]),
];

/// Services callable without a token: Kubernetes probes use health, and
/// contract tools (grpcurl) use reflection. Neither reveals shop data.
pub const OPEN_SERVICES: &[&str] = &[
    tonic_health::pb::health_server::SERVICE_NAME,
    tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME,
    tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME,
];

/// Prefix of every token `xiaoer token new` issues; lets the config parser
/// recognise a plain token pasted where its hash belongs.
pub const TOKEN_PREFIX: &str = "xo_";
/// Random bytes in a token: 256 bits, far beyond any guessing.
const TOKEN_BYTES: usize = 32;
/// Random salt bytes in a new hash.
const SALT_BYTES: usize = 16;
/// Shortest salt accepted from configuration.
const MIN_SALT_BYTES: usize = 8;
/// Longest token name; names appear in every audit row.
const MAX_NAME_CHARS: usize = 64;
/// Scheme tag of the only hash format.
const HASH_SCHEME: &str = "sha256";

/// Why the token configuration cannot be used. Messages never echo a
/// configured value, in case a secret was pasted into the wrong place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenConfigError {
    /// The role is not one of the three.
    #[error("unknown role {0:?}; expected storefront, helpdesk or admin")]
    UnknownRole(String),
    /// Names go into audit rows and `XIAOER_TOKENS`, so they are kept simple.
    #[error("token name {0:?} must be 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.'")]
    BadName(String),
    /// The hash is not `sha256$<salt hex>$<digest hex>`.
    #[error("token hash must look like sha256$<salt hex>$<digest hex>: {0}")]
    BadHash(String),
    /// A token itself was configured instead of its hash.
    #[error("a plain token was configured where its hash belongs; configure the hash that `xiaoer token new` printed and give the token only to the client")]
    PlainToken,
    /// An `XIAOER_TOKENS` entry is not `name:role:hash`.
    #[error("XIAOER_TOKENS entry {0} must be name:role:hash")]
    BadEntry(usize),
    /// Two tokens share a name, which would make the audit log ambiguous.
    #[error("token name {0:?} is configured twice; each token needs its own name")]
    DuplicateName(String),
}

/// A token as stored in configuration: `sha256$<salt hex>$<digest hex>` with
/// digest = SHA-256(salt ‖ token).
///
/// One salted SHA-256 is enough here because tokens are 256-bit random values,
/// not passwords: nobody can enumerate them, so the slow, memory-hard hashes
/// that protect low-entropy passwords (bcrypt, Argon2) would add nothing but
/// milliseconds of CPU to every call. The salt keeps equal tokens from having
/// equal hashes and rules out precomputed tables. Digests are compared in
/// constant time so response timing reveals nothing about a near miss.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash {
    salt: Vec<u8>,
    digest: [u8; 32],
}

impl TokenHash {
    /// Hashes `token` with a fresh random salt.
    pub fn new(token: &str) -> Self {
        let mut salt = vec![0u8; SALT_BYTES];
        rand::rng().fill_bytes(&mut salt);
        let digest = salted_digest(&salt, token);
        Self { salt, digest }
    }

    /// Whether `token` is the one this hash was made from (constant-time compare).
    pub fn matches(&self, token: &str) -> bool {
        constant_time_eq(&salted_digest(&self.salt, token), &self.digest)
    }
}

fn salted_digest(salt: &[u8], token: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(token.as_bytes());
    hasher.finalize().into()
}

/// Equality whose running time depends only on the length, not on where the
/// first differing byte is.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl FromStr for TokenHash {
    type Err = TokenConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with(TOKEN_PREFIX) {
            return Err(TokenConfigError::PlainToken);
        }
        let bad = |why: &str| TokenConfigError::BadHash(why.to_string());
        let mut parts = s.split('$');
        let (Some(scheme), Some(salt), Some(digest), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected three '$'-separated parts"));
        };
        if scheme != HASH_SCHEME {
            return Err(bad("the only supported scheme is sha256"));
        }
        let salt = hex::decode(salt).map_err(|e| bad(&format!("salt is not hex ({e})")))?;
        if salt.len() < MIN_SALT_BYTES {
            return Err(bad(&format!(
                "salt has {} bytes; at least {MIN_SALT_BYTES} are required",
                salt.len()
            )));
        }
        let digest = hex::decode(digest).map_err(|e| bad(&format!("digest is not hex ({e})")))?;
        let digest: [u8; 32] = digest.try_into().map_err(|d: Vec<u8>| {
            bad(&format!(
                "digest has {} bytes; SHA-256 has 32 (64 hex digits)",
                d.len()
            ))
        })?;
        Ok(Self { salt, digest })
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{HASH_SCHEME}${}${}",
            hex::encode(&self.salt),
            hex::encode(self.digest)
        )
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One configured token: who (name), what for (role), and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTokenEntry")]
pub struct TokenEntry {
    /// Identifies the caller in audit rows and logs.
    pub name: String,
    /// What the caller may do.
    pub role: Role,
    /// The token, hashed.
    pub hash: TokenHash,
}

/// A `[[tokens]]` table of the config file before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokenEntry {
    name: String,
    role: String,
    hash: String,
}

impl TryFrom<RawTokenEntry> for TokenEntry {
    type Error = TokenConfigError;

    fn try_from(raw: RawTokenEntry) -> Result<Self, Self::Error> {
        TokenEntry::new(&raw.name, raw.role.parse()?, raw.hash.parse()?)
    }
}

impl TokenEntry {
    /// Validates the name; role and hash are already typed.
    pub fn new(name: &str, role: Role, hash: TokenHash) -> Result<Self, TokenConfigError> {
        let name = name.trim();
        let valid = !name.is_empty()
            && name.chars().count() <= MAX_NAME_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(TokenConfigError::BadName(name.to_string()));
        }
        Ok(Self {
            name: name.to_string(),
            role,
            hash,
        })
    }

    /// The `[[tokens]]` table for the serve config file.
    pub fn toml_entry(&self) -> String {
        format!(
            "[[tokens]]\nname = \"{}\"\nrole = \"{}\"\nhash = \"{}\"\n",
            self.name, self.role, self.hash
        )
    }

    /// The `name:role:hash` item for `XIAOER_TOKENS`.
    pub fn env_entry(&self) -> String {
        format!("{}:{}:{}", self.name, self.role, self.hash)
    }
}

/// The configured tokens; empty means "no access control, loopback only".
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    entries: Vec<TokenEntry>,
}

impl Tokens {
    /// Checks that names are unique.
    pub fn new(entries: Vec<TokenEntry>) -> Result<Self, TokenConfigError> {
        for (i, entry) in entries.iter().enumerate() {
            if entries[..i].iter().any(|e| e.name == entry.name) {
                return Err(TokenConfigError::DuplicateName(entry.name.clone()));
            }
        }
        Ok(Self { entries })
    }

    /// Parses `XIAOER_TOKENS`: comma-separated `name:role:hash` items.
    pub fn parse_list(list: &str) -> Result<Self, TokenConfigError> {
        let mut entries = Vec::new();
        for (i, item) in list.split(',').map(str::trim).enumerate() {
            if item.is_empty() {
                continue;
            }
            let mut parts = item.splitn(3, ':');
            let (Some(name), Some(role), Some(hash)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(TokenConfigError::BadEntry(i + 1));
            };
            entries.push(TokenEntry::new(name, role.parse()?, hash.parse()?)?);
        }
        Self::new(entries)
    }

    /// True when no token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many tokens are configured.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry whose hash matches `token`. Every entry is checked, so the
    /// time taken does not depend on which one matched.
    pub fn verify(&self, token: &str) -> Option<&TokenEntry> {
        self.entries.iter().fold(None, |found, entry| {
            let hit = entry.hash.matches(token);
            found.or(hit.then_some(entry))
        })
    }
}

/// A freshly generated token with its configuration entry.
pub struct NewToken {
    /// The secret, shown once: only the client keeps it.
    pub token: String,
    /// What the server is configured with.
    pub entry: TokenEntry,
}

impl NewToken {
    /// Generates `xo_` + 64 hex digits of OS-seeded CSPRNG output. Without a
    /// name, one is made from the role and a short random suffix.
    pub fn generate(role: Role, name: Option<&str>) -> Result<Self, TokenConfigError> {
        let mut rng = rand::rng();
        let mut secret = [0u8; TOKEN_BYTES];
        rng.fill_bytes(&mut secret);
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        let name = match name {
            Some(name) => name.to_string(),
            None => format!("{role}-{:04x}", rng.next_u32() as u16),
        };
        let entry = TokenEntry::new(&name, role, TokenHash::new(&token))?;
        Ok(Self { token, entry })
    }

    /// What `xiaoer token new` prints: the token once, then the exact lines
    /// the server needs.
    pub fn instructions(&self) -> String {
        format!(
            "New {role} token \"{name}\" — shown only this once; give it to the client and keep no other copy:\n\n\
             {token}\n\n\
             Add to the `xiaoer serve` config file (--config):\n\n\
             {toml}\n\
             or append to XIAOER_TOKENS (comma-separated):\n\n\
             {env}\n\n\
             Clients send it as `authorization: Bearer <token>` metadata (xiaoer chat/health/eval: --token or XIAOER_TOKEN).\n",
            role = self.entry.role,
            name = self.entry.name,
            token = self.token,
            toml = self.entry.toml_entry(),
            env = self.entry.env_entry(),
        )
    }
}

/// `serve` was asked to listen beyond this machine with no tokens configured.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to listen on {addr} without access tokens: anyone who can reach it could read \
     conversations and handoffs. Create tokens with `xiaoer token new --role storefront` \
     (and --role helpdesk, --role admin), add the printed lines to the config file or \
     XIAOER_TOKENS, and restart; or listen on a loopback address such as 127.0.0.1:50051"
)]
pub struct ExposureError {
    /// The refused listen address.
    pub addr: SocketAddr,
}

/// Without tokens the server must stay on loopback, where only this machine
/// can call it.
pub fn check_exposure(addr: SocketAddr, tokens: &Tokens) -> Result<(), ExposureError> {
    if tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(ExposureError { addr });
    }
    Ok(())
}

/// Why a call was refused before reaching its handler.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Denial {
    /// No `authorization` metadata.
    MissingToken,
    /// Metadata present but not `Bearer <token>`.
    Malformed,
    /// A bearer token that matches no configured hash.
    UnknownToken,
    /// A valid token whose role is not allowed this method.
    WrongRole(Role),
    /// A valid token, but the method has no rule (not in the contract).
    NoRule,
}

impl Denial {
    /// Short label for metrics and the audit outcome.
    fn reason(&self) -> &'static str {
        match self {
            Denial::MissingToken => "missing_token",
            Denial::Malformed => "malformed_token",
            Denial::UnknownToken => "unknown_token",
            Denial::WrongRole(_) => "wrong_role",
            Denial::NoRule => "no_rule",
        }
    }

    fn into_error(self, method: &str) -> ServiceError {
        match self {
            Denial::MissingToken => ServiceError::Unauthenticated(
                "missing `authorization: Bearer <token>` metadata".into(),
            ),
            Denial::Malformed => ServiceError::Unauthenticated(
                "malformed authorization metadata; expected `Bearer <token>`".into(),
            ),
            Denial::UnknownToken => ServiceError::Unauthenticated("unknown token".into()),
            Denial::WrongRole(role) => {
                ServiceError::PermissionDenied(format!("role {role} may not call {method}"))
            }
            Denial::NoRule => {
                ServiceError::PermissionDenied(format!("{method} has no access rule"))
            }
        }
    }
}

/// Who is calling, as their token says; handlers read it from the
/// request's extensions (agents may act only in their own name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (an agent's id on helpdesk tokens).
    pub name: String,
    pub role: Role,
}

/// What the gate decided for one call.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Let through; with the caller's identity when a token was checked.
    Pass(Option<Caller>),
    /// `who` is the token name, or "anonymous" when no valid token was sent.
    Deny { who: String, denial: Denial },
}

/// The roles allowed to call `method`, from [`METHOD_ROLES`].
pub fn allowed_roles(method: &str) -> Option<&'static [Role]> {
    METHOD_ROLES
        .iter()
        .find(|(path, _)| *path == method)
        .map(|(_, roles)| *roles)
}

fn is_open(method: &str) -> bool {
    let service = method.trim_start_matches('/').split('/').next();
    service.is_some_and(|s| OPEN_SERVICES.contains(&s))
}

/// Decides one call from its method path and `authorization` metadata.
fn decide(tokens: &Tokens, method: &str, authorization: Option<&http::HeaderValue>) -> Verdict {
    if tokens.is_empty() || is_open(method) {
        return Verdict::Pass(None);
    }
    let anonymous = |denial| Verdict::Deny {
        who: "anonymous".into(),
        denial,
    };
    let Some(value) = authorization else {
        return anonymous(Denial::MissingToken);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    let Some(token) = token else {
        return anonymous(Denial::Malformed);
    };
    let Some(caller) = tokens.verify(token) else {
        return anonymous(Denial::UnknownToken);
    };
    match allowed_roles(method) {
        Some(roles) if roles.contains(&caller.role) => Verdict::Pass(Some(Caller {
            name: caller.name.clone(),
            role: caller.role,
        })),
        Some(_) => Verdict::Deny {
            who: caller.name.clone(),
            denial: Denial::WrongRole(caller.role),
        },
        None => Verdict::Deny {
            who: caller.name.clone(),
            denial: Denial::NoRule,
        },
    }
}

/// Longest method path written to the audit log; unknown paths come from
/// the caller and must not bloat it.
const MAX_AUDIT_PATH: usize = 128;

struct Gate {
    tokens: Tokens,
    store: Store,
}

impl Gate {
    /// Audits, logs and counts a denial, and turns it into the response.
    async fn refuse(&self, method: String, who: String, denial: Denial) -> Status {
        let subject: String = method.chars().take(MAX_AUDIT_PATH).collect();
        let reason = denial.reason();
        // Only contract paths become metric labels, so callers cannot blow up cardinality.
        let label = METHOD_ROLES
            .iter()
            .map(|(path, _)| *path)
            .find(|path| *path == method)
            .unwrap_or("other");
        telemetry::record_auth_denial(label, reason);
        info!(caller = %who, method = %subject, reason, "call refused by access control");
        if let Err(e) = self.store.audit(&who, "rpc", &subject, reason).await {
            warn!(error = %e, caller = %who, method = %subject, "cannot write the audit row of a refused call");
        }
        Status::from(denial.into_error(&subject))
    }
}

/// Tower layer enforcing [`METHOD_ROLES`] in front of the gRPC router.
#[derive(Clone)]
pub struct AuthLayer {
    gate: Arc<Gate>,
}

impl AuthLayer {
    /// With no tokens every call passes (the server is then loopback-only,
    /// see [`check_exposure`]); denials are audited in `store`.
    pub fn new(tokens: Tokens, store: Store) -> Self {
        Self {
            gate: Arc::new(Gate { tokens, store }),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            gate: Arc::clone(&self.gate),
        }
    }
}

/// The service [`AuthLayer`] wraps around the router.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let method = request.uri().path();
        match decide(
            &self.gate.tokens,
            method,
            request.headers().get(http::header::AUTHORIZATION),
        ) {
            Verdict::Pass(caller) => {
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                Box::pin(self.inner.call(request))
            }
            Verdict::Deny { who, denial } => {
                let gate = Arc::clone(&self.gate);
                let method = method.to_string();
                Box::pin(async move { Ok(gate.refuse(method, who, denial).await.into_http()) })
            }
        }
    }
}

#[cfg(test)]
mod tests;
