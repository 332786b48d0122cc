//! Access control and TLS end to end: a real server with bearer tokens for
//! each role, serving TLS with a certificate made in the test, called over
//! gRPC for every RPC of the contract by every kind of caller.

use std::path::PathBuf;
use std::process::Command;
use std::str::FromStr;
use std::sync::OnceLock;

use prost::Message;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::Code;
use xiaoer_evals::client::{connect_channel, AuthChannel};
use xiaoer_evals::ClientAuthArgs;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_service::auth::{NewToken, Role};
use xiaoer_service::config::ServeArgs;
use xiaoer_service::embedded::EmbeddedServer;
use xiaoer_service::store::{sqlite_url, Store};

/// The server under test with the secrets its clients hold.
struct Secured {
    server: EmbeddedServer,
    ca: PathBuf,
    storefront: String,
    helpdesk: String,
    admin: String,
}

/// Writes a self-signed certificate for `localhost` and returns (cert, key) paths.
fn self_signed(dir: &std::path::Path, stem: &str) -> (PathBuf, PathBuf) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.join(format!("{stem}.crt.pem"));
    let key = dir.join(format!("{stem}.key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

fn secured() -> &'static Secured {
    static SERVER: OnceLock<Secured> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let (cert, key) = self_signed(&dir, "server");
        let tokens = [
            NewToken::generate(Role::Storefront, Some("shop-web")).unwrap(),
            NewToken::generate(Role::Helpdesk, Some("desk")).unwrap(),
            NewToken::generate(Role::Admin, Some("ops")).unwrap(),
        ];
        let list: Vec<String> = tokens.iter().map(|t| t.entry.env_entry()).collect();
        let server = EmbeddedServer::start(ServeArgs {
            tokens: Some(list.join(",")),
            tls_cert: Some(cert.clone()),
            tls_key: Some(key),
            ..ServeArgs::default()
        })
        .unwrap();
        let [storefront, helpdesk, admin] = tokens.map(|t| t.token);
        Secured {
            server,
            ca: cert,
            storefront,
            helpdesk,
            admin,
        }
    })
}

impl Secured {
    /// A TLS channel through the clients' shared helper, with `token` if given.
    async fn channel(&self, token: Option<&str>) -> AuthChannel {
        connect_channel(
            &self.server.url(),
            &ClientAuthArgs {
                token: token.map(str::to_string),
                tls_ca: Some(self.ca.clone()),
            },
        )
        .await
        .unwrap()
    }
}

/// Every method of the compiled contract, as a gRPC path, with whether the
/// server streams its answer.
fn contract_methods() -> Vec<(String, bool)> {
    let set = prost_types::FileDescriptorSet::decode(xiaoer_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                methods.push((
                    format!("/{}.{}/{}", file.package(), service.name(), method.name()),
                    method.server_streaming(),
                ));
            }
        }
    }
    methods
}

/// The role matrix of issue #8, written out independently of the server's
/// table: storefront answers shoppers, helpdesk works the queue, admin does all.
fn expected_roles(method: &str) -> &'static [&'static str] {
    match method.rsplit_once('/') {
        Some((
            "/xiaoer.v1.AutoReply",
            "Reply" | "Classify" | "WatchConversation" | "RateReply",
        ))
        | Some(("/xiaoer.v1.KnowledgeBase", "Search")) => &["storefront", "admin"],
        Some(("/xiaoer.v1.AutoReply", "SuggestReplies" | "Feedback"))
        | Some(("/xiaoer.v1.Handoffs", _)) => &["helpdesk", "admin"],
        Some(("/xiaoer.v1.KnowledgeBase", "Reload")) => &["admin"],
        _ => panic!("{method} is new: add it to the expected role matrix"),
    }
}

/// Calls `method` with an empty request (every field at its default) and the
/// given `authorization` metadata; returns the status code (for a stream:
/// the code it opened with, without waiting for its messages).
async fn call(
    channel: AuthChannel,
    (method, streaming): &(String, bool),
    authorization: Option<&str>,
) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let path = PathAndQuery::from_str(method).unwrap();
    let outcome = if *streaming {
        grpc.server_streaming(request, path, codec).await.map(drop)
    } else {
        grpc.unary(request, path, codec).await.map(drop)
    };
    outcome.map_or_else(|status| status.code(), |()| Code::Ok)
}

/// (actor, action, subject, outcome, at) rows of the audit log.
async fn audit_rows(server: &EmbeddedServer) -> Vec<(String, String, String, String, i64)> {
    let pool = sqlx::SqlitePool::connect(&sqlite_url(&server.data_dir))
        .await
        .unwrap();
    sqlx::query_as("SELECT actor, action, subject, outcome, at FROM audit_log")
        .fetch_all(&pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_rpc_enforces_the_role_matrix_and_audits_denials() {
    let s = secured();
    let channel = s.channel(None).await;
    let methods = contract_methods();
    assert_eq!(methods.len(), 14, "{methods:?}");
    let bearer = |token: &str| format!("Bearer {token}");
    let callers = [
        ("no token", None, None),
        ("garbage token", Some(bearer("xo_not-a-real-token")), None),
        (
            "storefront",
            Some(bearer(&s.storefront)),
            Some(("storefront", "shop-web")),
        ),
        (
            "helpdesk",
            Some(bearer(&s.helpdesk)),
            Some(("helpdesk", "desk")),
        ),
        ("admin", Some(bearer(&s.admin)), Some(("admin", "ops"))),
    ];
    let mut denials = Vec::new();
    for entry in &methods {
        let method = &entry.0;
        let allowed = expected_roles(method);
        for (label, header, identity) in &callers {
            let code = call(channel.clone(), entry, header.as_deref()).await;
            match identity {
                None => {
                    assert_eq!(code, Code::Unauthenticated, "{label} → {method}");
                    let outcome = if header.is_some() {
                        "unknown_token"
                    } else {
                        "missing_token"
                    };
                    denials.push(("anonymous", method.clone(), outcome));
                }
                Some((role, name)) if !allowed.contains(role) => {
                    assert_eq!(code, Code::PermissionDenied, "{label} → {method}");
                    denials.push((name, method.clone(), "wrong_role"));
                }
                Some(_) => assert!(
                    !matches!(code, Code::Unauthenticated | Code::PermissionDenied),
                    "{label} → {method} should pass the auth layer, got {code:?}"
                ),
            }
        }
    }
    let rows = audit_rows(&s.server).await;
    let now = xiaoer_service::clock::now_ms();
    for (who, method, outcome) in &denials {
        assert!(
            rows.iter()
                .any(|(actor, action, subject, out, at)| actor == who
                    && action == "rpc"
                    && subject == method
                    && out == outcome
                    && (now - 600_000..=now).contains(at)),
            "no audit row for {who} {method} {outcome}"
        );
    }
}

#[tokio::test]
async fn denied_calls_are_audited_without_their_message_text() {
    let s = secured();
    let secret = "我的手机号 13912345678，地址 幸福路 8 号";
    let request = || pb::ReplyRequest {
        conversation_id: "audit-probe".into(),
        text: secret.into(),
        ..Default::default()
    };
    let mut anonymous = AutoReplyClient::new(s.channel(None).await);
    assert_eq!(
        anonymous.reply(request()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut helpdesk = AutoReplyClient::new(s.channel(Some(&s.helpdesk)).await);
    let denied = helpdesk.reply(request()).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(
        denied.message().contains("helpdesk"),
        "{}",
        denied.message()
    );
    // A malformed header is refused the same way.
    let mut raw = tonic::Request::new(request());
    raw.metadata_mut()
        .insert("authorization", "Basic c2hvcDpzZWNyZXQ=".parse().unwrap());
    assert_eq!(
        anonymous.reply(raw).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let rows = audit_rows(&s.server).await;
    let reply = "/xiaoer.v1.AutoReply/Reply";
    for (actor, outcome) in [
        ("anonymous", "missing_token"),
        ("desk", "wrong_role"),
        ("anonymous", "malformed_token"),
    ] {
        assert!(
            rows.iter()
                .any(|(a, _, subject, o, _)| a == actor && subject == reply && o == outcome),
            "no audit row for {actor} {outcome}"
        );
    }
    for row in &rows {
        let text = format!("{row:?}");
        for leaked in ["13912345678", "幸福路", "audit-probe", &s.helpdesk] {
            assert!(!text.contains(leaked), "audit row leaks {leaked:?}: {text}");
        }
    }
    // Nothing of the refused request reached the conversation store.
    let store = Store::connect(&sqlite_url(&s.server.data_dir))
        .await
        .unwrap();
    assert!(store
        .conversation_turns("audit-probe", 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn tls_with_the_ca_works_and_anything_else_fails() {
    let s = secured();
    let mut shop = AutoReplyClient::new(s.channel(Some(&s.storefront)).await);
    let classified = shop
        .classify(pb::ClassifyRequest {
            text: "我的快递到哪了".into(),
            locale: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(classified.language, "zh");

    // Health stays open for probes, but over TLS it still needs the CA.
    let with_ca = ClientAuthArgs {
        token: None,
        tls_ca: Some(s.ca.clone()),
    };
    xiaoer_cli::health::health(&s.server.url(), &with_ca)
        .await
        .unwrap();

    // A plaintext client cannot talk to the TLS port.
    let plaintext_url = format!("http://{}", s.server.addr);
    let plaintext = match tonic::transport::Channel::from_shared(plaintext_url)
        .unwrap()
        .connect()
        .await
    {
        Err(_) => true,
        Ok(channel) => AutoReplyClient::new(channel)
            .classify(pb::ClassifyRequest {
                text: "hello".into(),
                locale: String::new(),
            })
            .await
            .is_err(),
    };
    assert!(plaintext, "plaintext call to a TLS server succeeded");

    // A client trusting another CA refuses the server's certificate.
    let dir = tempfile::tempdir().unwrap();
    let (other_ca, _) = self_signed(dir.path(), "other");
    let wrong = connect_channel(
        &s.server.url(),
        &ClientAuthArgs {
            token: Some(s.storefront.clone()),
            tls_ca: Some(other_ca),
        },
    )
    .await;
    let refused = match wrong {
        Err(_) => true,
        Ok(channel) => AutoReplyClient::new(channel)
            .classify(pb::ClassifyRequest {
                text: "hello".into(),
                locale: String::new(),
            })
            .await
            .is_err(),
    };
    assert!(refused, "a certificate from an untrusted CA was accepted");
}

#[test]
fn serve_refuses_a_non_loopback_address_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xiaoer"))
        .args(["serve", "--addr", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("XIAOER_TOKENS")
        .env_remove("XIAOER_CONFIG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without access tokens"),
        "{stderr}"
    );
    assert!(stderr.contains("xiaoer token new"), "{stderr}");
    assert!(
        !dir.path().join("xiaoer.db").exists(),
        "refused before touching the database"
    );
}

#[test]
fn token_new_prints_a_token_and_config_lines_that_work() {
    let output = Command::new(env!("CARGO_BIN_EXE_xiaoer"))
        .args(["token", "new", "--role", "helpdesk", "--name", "desk-2"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout
        .lines()
        .find(|l| l.starts_with("xo_"))
        .expect("token line");
    let toml_start = stdout.find("[[tokens]]").expect("TOML entry");
    let toml: String = stdout[toml_start..]
        .lines()
        .take(4)
        .map(|l| format!("{l}\n"))
        .collect();
    let env = stdout
        .lines()
        .find(|l| l.starts_with("desk-2:helpdesk:sha256$"))
        .expect("XIAOER_TOKENS entry");
    assert!(!toml.contains(token) && !env.contains(token), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("xiaoer.toml");
    std::fs::write(&file, &toml).unwrap();
    for args in [
        ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        },
        ServeArgs {
            tokens: Some(env.to_string()),
            ..ServeArgs::default()
        },
    ] {
        let config = args.resolve().unwrap();
        let entry = config.tokens.verify(token).expect("printed token verifies");
        assert_eq!(
            (entry.name.as_str(), entry.role),
            ("desk-2", Role::Helpdesk)
        );
    }

    for bad in [
        vec!["token", "new", "--role", "owner"],
        vec!["token", "new", "--role", "admin", "--name", "no spaces"],
        vec!["token", "new"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_xiaoer"))
            .args(&bad)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{bad:?}");
        assert!(output.stdout.is_empty(), "{bad:?} printed a token");
    }
}

/// Issue #22: with tokens on, an agent claims and replies only in their own
/// name — the helpdesk token "desk" cannot act as another agent.
#[tokio::test]
async fn agents_act_only_in_their_own_token_name() {
    use xiaoer_proto::v1::handoffs_client::HandoffsClient;
    let s = secured();
    let mut desk = HandoffsClient::new(s.channel(Some(&s.helpdesk)).await);
    let as_other = desk
        .claim_handoff(pb::ClaimHandoffRequest {
            handoff_id: "h-1".into(),
            agent_id: "someone-else".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(as_other.code(), Code::PermissionDenied, "{as_other:?}");
    let as_self = desk
        .claim_handoff(pb::ClaimHandoffRequest {
            handoff_id: "h-1".into(),
            agent_id: "desk".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        as_self.code(),
        Code::NotFound,
        "own name passes, the handoff is unknown"
    );
    let post = desk
        .post_agent_message(pb::PostAgentMessageRequest {
            handoff_id: "h-1".into(),
            agent_id: "someone-else".into(),
            text: "您好".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(post.code(), Code::PermissionDenied);
}
