//! Malformed and oversized Reply requests for `xiaoer eval load
//! --malformed-every N`: what a buggy or hostile storefront sends. A healthy
//! server refuses each with the status listed here — quickly, without
//! storing anything and without disturbing the well-formed traffic around it.

use tonic::Code;
use xiaoer_proto::v1 as pb;

/// One kind of bad request and the refusal it must get.
pub struct Malformed {
    /// Short name for reports.
    pub kind: &'static str,
    /// The request to send, wrong in exactly one way.
    pub request: pb::ReplyRequest,
    /// The status codes that count as a correct refusal.
    pub expected: &'static [Code],
}

/// Kinds sent in turn, so every kind appears in any run of a few dozen.
const KINDS: usize = 8;

/// The `n`-th malformed request (kinds cycle); `id` keeps conversation ids
/// apart from the well-formed traffic's, `channel` labels it as that traffic is.
pub fn nth(n: u64, id: &str, channel: &str) -> Malformed {
    let request = |conversation_id: String, text: String| pb::ReplyRequest {
        conversation_id,
        text,
        channel: channel.to_string(),
        ..Default::default()
    };
    let ok_id = || format!("{id}-bad-{n}");
    const INVALID: &[Code] = &[Code::InvalidArgument];
    match n as usize % KINDS {
        0 => Malformed {
            kind: "empty text",
            request: request(ok_id(), String::new()),
            expected: INVALID,
        },
        1 => Malformed {
            kind: "whitespace-only text",
            request: request(ok_id(), " \n\t　".into()),
            expected: INVALID,
        },
        2 => Malformed {
            kind: "100 kB text",
            request: request(ok_id(), "退货".repeat(100_000 / 6)),
            expected: INVALID,
        },
        3 => Malformed {
            kind: "missing conversation id",
            request: request(String::new(), "在吗".into()),
            expected: INVALID,
        },
        4 => Malformed {
            kind: "control characters in the conversation id",
            request: request(format!("{}\u{0}\u{7}", ok_id()), "在吗".into()),
            expected: INVALID,
        },
        5 => Malformed {
            kind: "1,000-character conversation id",
            request: request("x".repeat(1000), "在吗".into()),
            expected: INVALID,
        },
        6 => Malformed {
            kind: "oversized client turn id",
            request: pb::ReplyRequest {
                client_turn_id: "t".repeat(10_000),
                ..request(ok_id(), "在吗".into())
            },
            expected: INVALID,
        },
        _ => Malformed {
            // Past gRPC's 4 MB message limit: refused before any handler runs.
            kind: "5 MB message",
            request: request(ok_id(), "a".repeat(5 << 20)),
            expected: &[Code::OutOfRange, Code::ResourceExhausted],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn kinds_cycle_and_each_is_really_malformed() {
        let kinds: BTreeSet<&str> = (0..KINDS as u64)
            .map(|n| nth(n, "c", "test").kind)
            .collect();
        assert_eq!(kinds.len(), KINDS, "every kind is distinct");
        assert_eq!(
            nth(0, "c", "test").kind,
            nth(KINDS as u64, "c", "test").kind
        );
        assert!(nth(0, "c", "test").request.text.is_empty());
        assert!(nth(1, "c", "test").request.text.trim().is_empty());
        assert!(nth(2, "c", "test").request.text.len() >= 99_000);
        assert!(nth(3, "c", "test").request.conversation_id.is_empty());
        assert!(nth(4, "c", "test")
            .request
            .conversation_id
            .chars()
            .any(char::is_control));
        assert!(nth(5, "c", "test").request.conversation_id.len() > 128);
        assert!(nth(6, "c", "test").request.client_turn_id.len() > 128);
        assert!(nth(7, "c", "test").request.text.len() > 4 << 20);
        // Otherwise-valid fields stay valid, so each request has exactly one fault.
        assert!(!nth(2, "c", "test").request.conversation_id.is_empty());
        assert_eq!(
            nth(2, "c", "test").request.text.chars().count(),
            2 * (100_000 / 6)
        );
    }
}
