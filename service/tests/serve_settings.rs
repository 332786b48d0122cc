//! The overload and retention settings of `serve` on the real server (real
//! model, SQLite), through the generated client: a flooding conversation is
//! refused with RESOURCE_EXHAUSTED before any work and nothing is stored for
//! it, other conversations are unaffected, and `retention_days` purges old
//! conversations at startup and stops with the server.

use std::time::{Duration, Instant};

use tonic::Code;
use tonic_types::StatusExt;
use xiaoer_domain::{Intent, TurnRole};
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;
use xiaoer_service::clock::now_ms;
use xiaoer_service::config::ServeArgs;
use xiaoer_service::server::{serve, App};
use xiaoer_service::store::{
    sqlite_url, ConversationMeta, Exchange, Store, StoreTable, TurnRecord,
};

fn turn(role: TurnRole, at_ms: i64) -> TurnRecord {
    TurnRecord {
        id: uuid::Uuid::new_v4().simple().to_string(),
        role,
        text: "退货运费谁出".into(),
        intent: Intent::ReturnRequest,
        sentiment: 2,
        anger: 0.0,
        action: 1,
        articles: vec![],
        at_ms,
        agent_id: String::new(),
    }
}

async fn seed_old_conversation(store: &Store, id: &str, age_days: i64) {
    let at = now_ms() - age_days * 86_400_000;
    store
        .record_exchange(&Exchange {
            conversation: ConversationMeta {
                id: id.into(),
                shop_id: "demo".into(),
                channel: "web".into(),
                language: "zh".into(),
            },
            customer: turn(TurnRole::Customer, at),
            bot: Some(turn(TurnRole::Bot, at)),
            open_handoff: None,
            client_turn_id: None,
            response: vec![],
            handoff: None,
        })
        .await
        .unwrap();
}

fn request(conversation: &str, text: &str) -> pb::ReplyRequest {
    pb::ReplyRequest {
        conversation_id: conversation.into(),
        text: text.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_is_refused_quickly_and_retention_runs_with_the_server() {
    let data_dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&sqlite_url(data_dir.path())).await.unwrap();
    seed_old_conversation(&store, "old-conversation", 40).await;
    seed_old_conversation(&store, "recent-conversation", 10).await;
    let audits_before = store.count(StoreTable::AuditLog).await.unwrap();

    let args = ServeArgs {
        data_dir: Some(data_dir.path().to_path_buf()),
        conversation_burst: Some(3),
        conversation_rate: Some(1),
        retention_days: Some(30),
        ..ServeArgs::default()
    };
    let app = App::load(args.resolve().unwrap())
        .await
        .expect("server loads (weights fetched? run scripts/fetch-weights.sh)");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(app, listener, async {
        let _ = stopped.await;
    }));
    let mut client = AutoReplyClient::connect(endpoint).await.unwrap();

    // Retention: the startup run purged the 40-day-old conversation only.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !store
        .conversation_turns("old-conversation", 10)
        .await
        .unwrap()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "retention did not run at startup"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        store
            .conversation_turns("recent-conversation", 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store.count(StoreTable::AuditLog).await.unwrap() > audits_before,
        "purge audited"
    );

    // Rate limit: burst 3, then 1 per minute.
    let flood = format!("flood-{}", uuid::Uuid::new_v4().simple());
    for i in 0..3 {
        client
            .reply(request(&flood, "退货运费谁出"))
            .await
            .unwrap_or_else(|s| panic!("message {i} of the burst: {s}"));
    }
    let started = Instant::now();
    let refused = client
        .reply(request(&flood, "退货运费谁出"))
        .await
        .expect_err("fourth message in a burst of three");
    let took = started.elapsed();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("too fast"),
        "{}",
        refused.message()
    );
    assert!(
        refused.message().contains("retry in"),
        "{}",
        refused.message()
    );
    assert!(took < Duration::from_millis(500), "refusal took {took:?}");
    // The refusal says when to retry in google.rpc.RetryInfo (one token
    // refills in a minute at 1 per minute) and carries a request id.
    let retry = refused
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .expect("RetryInfo on RESOURCE_EXHAUSTED");
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(60),
        "{retry:?}"
    );
    let id = refused.metadata().get("x-request-id").expect("request id");
    assert_eq!(id.len(), 32, "{id:?}");
    // A caller's own request id comes back, on success as on refusal.
    let mut tagged = tonic::Request::new(request("tagged-conversation", "退货运费谁出"));
    tagged
        .metadata_mut()
        .insert("x-request-id", "shop-web/7f3a-1".parse().unwrap());
    let answered = client.reply(tagged).await.unwrap();
    assert_eq!(
        answered.metadata().get("x-request-id").unwrap(),
        "shop-web/7f3a-1"
    );
    // A retry with a client turn id is refused too: the replay lookup is not a way around it.
    let mut retried = request(&flood, "退货运费谁出");
    retried.client_turn_id = "retry-1".into();
    assert_eq!(
        client.reply(retried).await.unwrap_err().code(),
        Code::ResourceExhausted
    );
    // Bad input is still reported as bad input, not as a flood.
    assert_eq!(
        client
            .reply(request(&flood, "   "))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        store.conversation_turns(&flood, 50).await.unwrap().len(),
        6,
        "three exchanges stored, nothing for the refused calls"
    );
    // Another conversation is not affected by the flood.
    let calm = client
        .reply(request("calm-conversation", "how long does a refund take"))
        .await
        .expect("other conversations keep being answered");
    assert!(!calm.into_inner().text.is_empty());

    // Shutdown stops the server and the retention task with it.
    drop(stop);
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("server and retention task stop on shutdown")
        .unwrap()
        .unwrap();
}
