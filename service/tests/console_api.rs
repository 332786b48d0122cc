//! The console's HTTP API under access control (issue #22): only helpdesk
//! and admin tokens sign in, the session is an HttpOnly cookie checked on
//! every call, the agent acts in the token's name, and bad requests get a
//! clear JSON error with the right status.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{stop_all, TestServer};
use serde_json::Value;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_service::auth::{NewToken, Role};
use xiaoer_service::config::ServeArgs;

/// Status, headers (lower-cased names) and body of one HTTP/1.1 exchange.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP/1.1 request over a fresh connection (what a browser sends,
/// minus everything the console does not read).
fn http(port: u16, method: &str, path: &str, cookie: Option<&str>, body: Option<&str>) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = body.unwrap_or("");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(cookie) = cookie {
        request.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_lowercase(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}

#[tokio::test]
async fn only_helpdesk_tokens_sign_in_and_agents_act_in_their_own_name() {
    let tokens = [
        NewToken::generate(Role::Storefront, Some("shop-web")).unwrap(),
        NewToken::generate(Role::Helpdesk, Some("desk-wang")).unwrap(),
    ];
    let list: Vec<String> = tokens.iter().map(|t| t.entry.env_entry()).collect();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::start(ServeArgs {
        tokens: Some(list.join(",")),
        console_addr: Some(format!("127.0.0.1:{port}").parse().unwrap()),
        ..ServeArgs::default()
    });
    let [shop_token, desk_token] = tokens.map(|t| t.token);

    // The page itself is public; the data is not.
    let page = http(port, "GET", "/", None, None);
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(http(port, "GET", "/assets/app.js", None, None).status, 200);
    let anonymous = http(port, "GET", "/api/me", None, None);
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.json()["error"]
        .as_str()
        .unwrap()
        .contains("sign in"));
    assert_eq!(http(port, "GET", "/api/handoffs", None, None).status, 401);

    // Sign-in: a storefront token is refused, a garbage one unknown.
    let sign_in = |token: &str| {
        http(
            port,
            "POST",
            "/api/session",
            None,
            Some(&serde_json::json!({ "token": token }).to_string()),
        )
    };
    assert_eq!(sign_in(&shop_token).status, 403);
    assert_eq!(sign_in("xo_not-a-token").status, 401);
    assert_eq!(sign_in("").status, 401);
    let signed = sign_in(&desk_token);
    assert_eq!(signed.status, 200, "{}", signed.body);
    let set_cookie = signed.header("set-cookie").expect("a session cookie");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let me = http(port, "GET", "/api/me", Some(&cookie), None).json();
    assert_eq!(me["name"], "desk-wang");
    assert_eq!(me["sign_in_required"], true);

    // A shopper is handed off through gRPC with the storefront token.
    let mut shop = AutoReplyClient::new(server.plaintext_channel().await.unwrap());
    let mut request = tonic::Request::new(pb::ReplyRequest {
        conversation_id: format!("console-{}", uuid::Uuid::new_v4().simple()),
        text: "转人工".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {shop_token}").parse().unwrap(),
    );
    let id = shop
        .reply(request)
        .await
        .unwrap()
        .into_inner()
        .handoff
        .unwrap()
        .handoff_id;

    let queue = http(port, "GET", "/api/handoffs", Some(&cookie), None).json();
    assert!(queue["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h["handoff_id"] == id.as_str() && h["status"] == "waiting"));
    assert_eq!(
        http(port, "GET", "/api/handoffs/no-such", Some(&cookie), None).status,
        404
    );

    // The agent claims and replies in the token's name.
    let claimed = http(
        port,
        "POST",
        &format!("/api/handoffs/{id}/claim"),
        Some(&cookie),
        None,
    );
    assert_eq!(claimed.status, 200, "{}", claimed.body);
    assert_eq!(claimed.json()["claimed_by"], "desk-wang");
    let again = http(
        port,
        "POST",
        &format!("/api/handoffs/{id}/claim"),
        Some(&cookie),
        None,
    );
    assert_eq!(again.status, 409, "already claimed");
    let post = |cookie: Option<&str>, text: &str| {
        http(
            port,
            "POST",
            &format!("/api/handoffs/{id}/messages"),
            cookie,
            Some(&serde_json::json!({ "text": text, "client_message_id": "c-1" }).to_string()),
        )
    };
    assert_eq!(post(None, "您好").status, 401);
    assert_eq!(post(Some(&cookie), "   ").status, 400);
    let sent = post(Some(&cookie), "您好，我是客服小王，马上为您处理。");
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.json()["agent_id"], "desk-wang");
    assert_eq!(sent.json()["role"], "agent");
    let bad_json = http(
        port,
        "POST",
        &format!("/api/handoffs/{id}/resolve"),
        Some(&cookie),
        Some("{not json"),
    );
    assert!(
        (400..500).contains(&bad_json.status),
        "malformed JSON is the client's error: {}",
        bad_json.status
    );

    // Signing out clears the cookie.
    let out = http(port, "POST", "/api/session/logout", Some(&cookie), None);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));

    drop(shop);
    stop_all(vec![server]).await;
}
