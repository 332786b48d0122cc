//! `xiaoer chat`: talk to a running server from the terminal, as a shopper would.

use std::io::{BufRead, Write};

use clap::Args;
use xiaoer_evals::client::connect_channel;
use xiaoer_evals::ClientAuthArgs;
use xiaoer_proto::v1 as pb;
use xiaoer_proto::v1::auto_reply_client::AutoReplyClient;

/// Flags of `xiaoer chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Server to talk to.
    #[arg(
        long,
        default_value = "http://127.0.0.1:50051",
        env = "XIAOER_ENDPOINT"
    )]
    pub endpoint: String,
    /// Locale sent with each message (empty: the server detects the language).
    #[arg(long, default_value = "")]
    pub locale: String,
    /// Show intent, sentiment and sources under each reply.
    #[arg(long)]
    pub verbose: bool,
    /// Token and CA for a secured server.
    #[command(flatten)]
    pub auth: ClientAuthArgs,
}

/// Reads shopper messages line by line and prints the bot's replies.
/// `/new` starts a new conversation, `/quit` (or end of input) leaves.
pub async fn chat(args: ChatArgs, input: impl BufRead, mut out: impl Write) -> anyhow::Result<()> {
    let mut client = AutoReplyClient::new(connect_channel(&args.endpoint, &args.auth).await?);
    let mut conversation = new_conversation_id();
    writeln!(out, "店小二 xiaoer — type a message as a shopper would (/new for a new conversation, /quit to leave)")?;
    for line in input.lines() {
        let line = line?;
        let text = line.trim();
        match text {
            "" => continue,
            "/quit" | "/exit" => break,
            "/new" => {
                conversation = new_conversation_id();
                writeln!(out, "— new conversation {conversation} —")?;
                continue;
            }
            _ => {}
        }
        let request = pb::ReplyRequest {
            conversation_id: conversation.clone(),
            text: text.to_string(),
            locale: args.locale.clone(),
            channel: "terminal".into(),
            ..Default::default()
        };
        match client.reply(request).await {
            Ok(response) => write_reply(&mut out, &response.into_inner(), args.verbose)?,
            Err(status) => writeln!(out, "[{:?}] {}", status.code(), status.message())?,
        }
        out.flush()?;
    }
    Ok(())
}

fn write_reply(
    out: &mut impl Write,
    reply: &pb::ReplyResponse,
    verbose: bool,
) -> std::io::Result<()> {
    let action = pb::Action::try_from(reply.action)
        .map(|a| a.as_str_name())
        .unwrap_or("?");
    writeln!(out, "小二> {}", reply.text)?;
    if verbose {
        let intent = reply
            .intent
            .as_ref()
            .map(|i| format!("{} {:.2}", i.name, i.confidence))
            .unwrap_or_default();
        let anger = reply
            .sentiment
            .as_ref()
            .map(|s| s.score)
            .unwrap_or_default();
        let sources: Vec<&str> = reply
            .sources
            .iter()
            .map(|s| s.article_id.as_str())
            .collect();
        writeln!(
            out,
            "      [{action} · intent {intent} · anger {anger:.2} · sources {sources:?}]"
        )?;
    } else if let Some(handoff) = &reply.handoff {
        writeln!(
            out,
            "      [handed off to the {} queue, priority {}]",
            handoff.queue, handoff.priority
        )?;
    }
    Ok(())
}

fn new_conversation_id() -> String {
    format!("chat-{}", uuid::Uuid::new_v4().simple())
}
