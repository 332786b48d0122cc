//! Server configuration: command-line flags, `XIAOER_*` environment variables
//! and an optional TOML file, in that order of precedence, over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use xiaoer_models::{E5Options, PoolConfig};

use crate::auth::{TokenEntry, Tokens};
use crate::duration::HumanDuration;
use crate::policy::PolicyConfig;
use crate::ratelimit::RateLimit;
use crate::sla::ResponseTimes;
use crate::telemetry::LogFormat;
use crate::tls::TlsFiles;

/// Flags of `xiaoer serve`; each is also an environment variable.
#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (flags and env win over it).
    #[arg(long, env = "XIAOER_CONFIG")]
    pub config: Option<PathBuf>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "XIAOER_ADDR")]
    pub addr: Option<SocketAddr>,
    /// Prometheus /metrics listen address [default: 127.0.0.1:9464].
    #[arg(long, env = "XIAOER_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Folder for the embedded SQLite database [default: ./data].
    #[arg(long, env = "XIAOER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://FILE or postgres://USER@HOST/DB [default: SQLite in --data-dir].
    #[arg(long, env = "XIAOER_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Folder with the encoder weights (scripts/fetch-weights.sh) [default: models/weights].
    #[arg(long, env = "XIAOER_MODELS_DIR")]
    pub models_dir: Option<PathBuf>,
    /// Folder with the trained heads [default: models/heads].
    #[arg(long, env = "XIAOER_HEADS_DIR")]
    pub heads_dir: Option<PathBuf>,
    /// Knowledge-base folder with shop.toml and articles/ [default: knowledge-base].
    #[arg(long, env = "XIAOER_KB_DIR")]
    pub kb_dir: Option<PathBuf>,
    /// Log format: "pretty" or "json" [default: pretty].
    #[arg(long, env = "XIAOER_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Inference worker threads, each batching requests [default: one per core, at most 8].
    #[arg(long, env = "XIAOER_INFERENCE_THREADS")]
    pub inference_threads: Option<usize>,
    /// Threads one forward pass splits the encoder's linear layers over, shared by the workers [default: one per core, at most 8].
    #[arg(long, env = "XIAOER_KERNEL_THREADS")]
    pub kernel_threads: Option<usize>,
    /// Most requests handled at once before RESOURCE_EXHAUSTED [default: 64].
    #[arg(long, env = "XIAOER_MAX_CONCURRENT")]
    pub max_concurrent: Option<usize>,
    /// Messages one conversation may send back to back before its rate applies [default: 10].
    #[arg(long, env = "XIAOER_CONVERSATION_BURST", value_parser = clap::value_parser!(u32).range(1..))]
    pub conversation_burst: Option<u32>,
    /// Sustained messages per minute per conversation; past it Reply answers RESOURCE_EXHAUSTED [default: 30].
    #[arg(long, env = "XIAOER_CONVERSATION_RATE", value_parser = clap::value_parser!(u32).range(1..))]
    pub conversation_rate: Option<u32>,
    /// Delete conversations and resolved handoffs idle for more than N days, checked hourly [default: keep forever].
    #[arg(long, env = "XIAOER_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retention_days: Option<u32>,
    /// Access tokens as comma-separated name:role:hash (`xiaoer token new` prints them); replaces the file's [[tokens]] [default: none, loopback only].
    #[arg(
        long,
        env = "XIAOER_TOKENS",
        hide_env_values = true,
        value_name = "NAME:ROLE:HASH,..."
    )]
    pub tokens: Option<String>,
    /// PEM certificate chain to serve TLS with (needs --tls-key) [default: plaintext].
    #[arg(long, env = "XIAOER_TLS_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "XIAOER_TLS_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// Serve the agents' web console here, e.g. 127.0.0.1:8080 [default: off].
    #[arg(long, env = "XIAOER_CONSOLE_ADDR")]
    pub console_addr: Option<SocketAddr>,
    /// How soon an agent should answer a handoff of priority 1,2,3,4, counted in the shop's service hours (shop.toml [service_hours]) [default: 5m,15m,1h,4h].
    #[arg(long, env = "XIAOER_RESPONSE_TIMES", value_name = "P1,P2,P3,P4")]
    pub response_times: Option<ResponseTimes>,
    /// On SIGTERM, how long to keep serving while health reports NOT_SERVING, so load balancers move traffic away first [default: 10s].
    #[arg(long, env = "XIAOER_DRAIN_WINDOW", value_name = "DURATION")]
    pub drain_window: Option<HumanDuration>,
    /// Close each client connection after this long (clients reconnect, so new replicas get traffic) [default: 5m].
    #[arg(long, env = "XIAOER_MAX_CONNECTION_AGE", value_name = "DURATION")]
    pub max_connection_age: Option<HumanDuration>,
    /// Time calls on a connection past its age get to finish [default: 30s].
    #[arg(long, env = "XIAOER_MAX_CONNECTION_AGE_GRACE", value_name = "DURATION")]
    pub max_connection_age_grace: Option<HumanDuration>,
    /// Reload the knowledge base when its folder changes (true/false) [default: true].
    #[arg(long, env = "XIAOER_KB_WATCH", value_name = "BOOL")]
    pub kb_watch: Option<bool>,
}

/// The TOML file's shape: the same keys as the flags, plus `[policy]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct FileSettings {
    addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    models_dir: Option<PathBuf>,
    heads_dir: Option<PathBuf>,
    kb_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    inference_threads: Option<usize>,
    kernel_threads: Option<usize>,
    max_concurrent: Option<usize>,
    conversation_burst: Option<u32>,
    conversation_rate: Option<u32>,
    retention_days: Option<u32>,
    tokens: Option<Vec<TokenEntry>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    response_times: Option<ResponseTimes>,
    console_addr: Option<SocketAddr>,
    drain_window: Option<HumanDuration>,
    max_connection_age: Option<HumanDuration>,
    max_connection_age_grace: Option<HumanDuration>,
    kb_watch: Option<bool>,
    policy: Option<PolicyConfig>,
}

/// Fully resolved settings the server runs with.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub models_dir: PathBuf,
    pub heads_dir: PathBuf,
    pub kb_dir: PathBuf,
    pub log_format: LogFormat,
    pub inference_threads: usize,
    pub kernel_threads: usize,
    pub max_concurrent: usize,
    /// Per-conversation flood limit on Reply.
    pub conversation_limit: RateLimit,
    /// Age past which idle conversations are purged; `None` keeps them forever.
    pub retention_days: Option<u32>,
    /// Bearer tokens; empty means loopback-only without access control.
    pub tokens: Tokens,
    /// Certificate and key when serving TLS.
    pub tls: Option<TlsFiles>,
    /// Handoff response time per priority.
    pub response_times: ResponseTimes,
    /// Where the agents' web console listens; `None`: not served.
    pub console_addr: Option<SocketAddr>,
    /// Serving on after SIGTERM with health NOT_SERVING, before closing.
    pub drain_window: Duration,
    /// Connections are closed after this long, so traffic spreads to new replicas.
    pub max_connection_age: Duration,
    /// Grace for calls on a connection past its age; also the longest a
    /// watch stream lives before it ends with UNAVAILABLE and resumes.
    pub max_connection_age_grace: Duration,
    /// Whether folder changes reload the knowledge base.
    pub kb_watch: bool,
    pub policy: PolicyConfig,
}

impl ServeArgs {
    /// Merges flags/env over the config file over defaults.
    pub fn resolve(&self) -> anyhow::Result<ServeConfig> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
                toml::from_str::<FileSettings>(&text)
                    .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?
            }
            None => FileSettings::default(),
        };
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let tokens = match &self.tokens {
            Some(list) => Tokens::parse_list(list)
                .map_err(|e| anyhow::anyhow!("XIAOER_TOKENS / --tokens: {e}"))?,
            None => Tokens::new(file.tokens.unwrap_or_default())
                .map_err(|e| anyhow::anyhow!("config file tokens: {e}"))?,
        };
        let tls = TlsFiles::pair(
            self.tls_cert.clone().or(file.tls_cert),
            self.tls_key.clone().or(file.tls_key),
        )?;
        let database_url = self
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| crate::store::sqlite_url(&data_dir));
        Ok(ServeConfig {
            addr: self
                .addr
                .or(file.addr)
                .unwrap_or_else(|| "127.0.0.1:50051".parse().expect("default addr")),
            metrics_addr: self
                .metrics_addr
                .or(file.metrics_addr)
                .unwrap_or_else(|| "127.0.0.1:9464".parse().expect("default addr")),
            data_dir,
            database_url,
            models_dir: self
                .models_dir
                .clone()
                .or(file.models_dir)
                .unwrap_or_else(|| workspace_path("models/weights")),
            heads_dir: self
                .heads_dir
                .clone()
                .or(file.heads_dir)
                .unwrap_or_else(|| workspace_path("models/heads")),
            kb_dir: self
                .kb_dir
                .clone()
                .or(file.kb_dir)
                .unwrap_or_else(|| workspace_path("knowledge-base")),
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            inference_threads: self
                .inference_threads
                .or(file.inference_threads)
                .unwrap_or_else(|| PoolConfig::default().workers)
                .max(1),
            kernel_threads: self
                .kernel_threads
                .or(file.kernel_threads)
                .unwrap_or_else(|| E5Options::default().kernel_threads)
                .max(1),
            max_concurrent: self
                .max_concurrent
                .or(file.max_concurrent)
                .unwrap_or(64)
                .max(1),
            conversation_limit: RateLimit {
                burst: positive(
                    "conversation_burst",
                    self.conversation_burst.or(file.conversation_burst),
                )?
                .unwrap_or(RateLimit::default().burst),
                per_minute: positive(
                    "conversation_rate",
                    self.conversation_rate.or(file.conversation_rate),
                )?
                .unwrap_or(RateLimit::default().per_minute),
            },
            retention_days: positive(
                "retention_days",
                self.retention_days.or(file.retention_days),
            )?,
            tokens,
            tls,
            response_times: self
                .response_times
                .or(file.response_times)
                .unwrap_or_default(),
            console_addr: self.console_addr.or(file.console_addr),
            drain_window: duration_setting(self.drain_window, file.drain_window, 10),
            max_connection_age: duration_setting(
                self.max_connection_age,
                file.max_connection_age,
                300,
            ),
            max_connection_age_grace: duration_setting(
                self.max_connection_age_grace,
                file.max_connection_age_grace,
                30,
            ),
            kb_watch: self.kb_watch.or(file.kb_watch).unwrap_or(true),
            policy: file.policy.unwrap_or_default(),
        })
    }
}

/// A duration from the flag/env, else the file, else `default_secs`.
fn duration_setting(
    arg: Option<HumanDuration>,
    file: Option<HumanDuration>,
    default_secs: u64,
) -> Duration {
    arg.or(file)
        .map_or(Duration::from_secs(default_secs), |d| d.0)
}

/// Rejects 0 for settings where it would mean "refuse everything" or "delete
/// everything" (flags already refuse it; this catches the TOML file).
fn positive(name: &str, value: Option<u32>) -> anyhow::Result<Option<u32>> {
    match value {
        Some(0) => anyhow::bail!("{name} must be at least 1"),
        other => Ok(other),
    }
}

/// Resolves a default path relative to the current directory when it exists
/// there, otherwise relative to the source checkout the binary was built
/// from, so `cargo run` works from any folder of the checkout.
pub fn workspace_path(relative: &str) -> PathBuf {
    let here = PathBuf::from(relative);
    if here.exists() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("xiaoer.toml");
        std::fs::write(&file, "addr = \"127.0.0.1:6000\"\nmetrics_addr = \"127.0.0.1:6001\"\n[policy]\nanger_threshold = 0.7\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            addr: Some("127.0.0.1:7000".parse().unwrap()),
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.addr.port(), 7000);
        assert_eq!(config.metrics_addr.port(), 6001);
        assert_eq!(config.policy.anger_threshold, Some(0.7));
        assert!(config.database_url.starts_with("sqlite://"));
    }

    #[test]
    fn rate_limit_and_retention_settings() {
        let defaults = ServeArgs::default().resolve().unwrap();
        assert_eq!(defaults.conversation_limit, RateLimit::default());
        assert_eq!(defaults.retention_days, None, "unset keeps data forever");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("xiaoer.toml");
        std::fs::write(
            &file,
            "conversation_burst = 4\nconversation_rate = 12\nretention_days = 90\n",
        )
        .unwrap();
        let from_file = ServeArgs {
            config: Some(file.clone()),
            conversation_rate: Some(20),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            from_file.conversation_limit,
            RateLimit {
                burst: 4,
                per_minute: 20
            }
        );
        assert_eq!(from_file.retention_days, Some(90));

        for zero in [
            "retention_days = 0",
            "conversation_rate = 0",
            "conversation_burst = 0",
        ] {
            std::fs::write(&file, zero).unwrap();
            let err = ServeArgs {
                config: Some(file.clone()),
                ..Default::default()
            }
            .resolve()
            .unwrap_err();
            assert!(
                err.to_string().contains("must be at least 1"),
                "{zero}: {err}"
            );
        }
    }

    #[test]
    fn drain_and_connection_settings_from_flags_file_and_defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let defaults = ServeArgs::default().resolve().unwrap();
        assert_eq!(defaults.drain_window, Duration::from_secs(10));
        assert_eq!(defaults.max_connection_age, Duration::from_secs(300));
        assert_eq!(defaults.max_connection_age_grace, Duration::from_secs(30));
        assert!(defaults.kb_watch);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("xiaoer.toml");
        std::fs::write(
            &file,
            "drain_window = \"20s\"\nmax_connection_age = \"15m\"\nkb_watch = false\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let cli = Cli::try_parse_from([
            "xiaoer",
            "--config",
            path,
            "--max-connection-age-grace",
            "1m",
            "--drain-window",
            "0s",
        ])
        .unwrap();
        let config = cli.serve.resolve().unwrap();
        assert_eq!(config.drain_window, Duration::ZERO, "the flag wins");
        assert_eq!(config.max_connection_age, Duration::from_secs(900));
        assert_eq!(config.max_connection_age_grace, Duration::from_secs(60));
        assert!(!config.kb_watch);
        for bad in [
            ["--drain-window", "10"],
            ["--max-connection-age", "soon"],
            ["--kb-watch", "maybe"],
        ] {
            assert!(
                Cli::try_parse_from(["xiaoer", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
        std::fs::write(&file, "drain_window = \"ten seconds\"").unwrap();
        let err = ServeArgs {
            config: Some(file),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(
            err.to_string().contains("no unit") || err.to_string().contains("whole number"),
            "{err}"
        );
    }

    #[test]
    fn zero_is_refused_on_the_command_line() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        for flag in [
            "--retention-days",
            "--conversation-rate",
            "--conversation-burst",
        ] {
            assert!(
                Cli::try_parse_from(["xiaoer", flag, "0"]).is_err(),
                "{flag} 0"
            );
        }
        let cli = Cli::try_parse_from(["xiaoer", "--retention-days", "30"]).unwrap();
        assert_eq!(cli.serve.retention_days, Some(30));
    }

    #[test]
    fn tokens_and_tls_come_from_file_or_env() {
        use crate::auth::{NewToken, Role};
        let desk = NewToken::generate(Role::Helpdesk, Some("desk")).unwrap();
        let shop = NewToken::generate(Role::Storefront, Some("shop")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("xiaoer.toml");
        std::fs::write(
            &file,
            format!("tls_cert = \"c.pem\"\n{}", desk.entry.toml_entry()),
        )
        .unwrap();
        let with_file = |tokens: Option<String>, tls_key: Option<PathBuf>| ServeArgs {
            config: Some(file.clone()),
            tokens,
            tls_key,
            ..Default::default()
        };
        let config = with_file(None, Some("k.pem".into())).resolve().unwrap();
        assert_eq!(
            config.tokens.verify(&desk.token).map(|e| e.role),
            Some(Role::Helpdesk)
        );
        assert_eq!(config.tls.unwrap().cert, PathBuf::from("c.pem"));
        // The environment list replaces the file's tokens.
        let config = with_file(Some(shop.entry.env_entry()), Some("k.pem".into()))
            .resolve()
            .unwrap();
        assert_eq!(config.tokens.len(), 1);
        assert!(config.tokens.verify(&desk.token).is_none());
        assert!(config.tokens.verify(&shop.token).is_some());
        // A certificate without its key is refused.
        let err = with_file(None, None).resolve().unwrap_err().to_string();
        assert!(err.contains("--tls-key is not"), "{err}");
        let err = with_file(
            Some(format!("shop:storefront:{}", shop.token)),
            Some("k.pem".into()),
        )
        .resolve()
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("XIAOER_TOKENS / --tokens: a plain token"),
            "{err}"
        );
        assert!(!err.contains(&shop.token), "{err}");
        std::fs::write(
            &file,
            format!("{}{}", desk.entry.toml_entry(), desk.entry.toml_entry()),
        )
        .unwrap();
        let err = with_file(None, None).resolve().unwrap_err().to_string();
        assert!(err.contains("\"desk\" is configured twice"), "{err}");
        assert!(ServeArgs::default().resolve().unwrap().tokens.is_empty());
    }

    #[test]
    fn unknown_keys_in_the_file_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("xiaoer.toml");
        std::fs::write(&file, "adress = \"x\"\n").unwrap();
        let err = ServeArgs {
            config: Some(file),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("adress"), "{err}");
    }
}
