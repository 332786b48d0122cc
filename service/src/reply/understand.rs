//! Stage 1, understand: one encoder pass on the inference threads feeds the
//! intent, sentiment and request heads and the dense half of retrieval.

use xiaoer_domain::{Intent, SentimentLabel};
use xiaoer_models::{Classifier, InferencePool, Language, TextRole};

use crate::error::ServiceError;

/// What one message means, from one pass of the encoder.
#[derive(Debug, Clone)]
pub struct Understanding {
    /// What was read: the message without a turned-down request for a
    /// person ([`crate::cues::without_declined_person`]); retrieval
    /// searches this too.
    pub text: String,
    /// The locale's language, or the detected one when none was sent.
    pub lang: Language,
    /// The retrieval view of the message, reused by dense search.
    pub embedding: Vec<f32>,
    /// Calibrated intents, best first.
    pub intents: Vec<(Intent, f32)>,
    /// The intent head's verdict that the message is not about this shop.
    pub out_of_scope: bool,
    /// The sentiment head's decided class.
    pub sentiment: SentimentLabel,
    /// Calibrated P(angry).
    pub anger: f32,
    /// The request head says the shopper asks staff to decide or act
    /// (waive a fee, approve a refund now, reroute a shipped parcel).
    pub asks_staff_action: bool,
}

impl Understanding {
    /// The top intent, or out_of_scope when the heads gave none.
    pub fn top_intent(&self) -> Intent {
        self.intents
            .first()
            .map(|(intent, _)| *intent)
            .unwrap_or(Intent::OutOfScope)
    }

    /// Calibrated confidence of [`Understanding::top_intent`].
    pub fn top_confidence(&self) -> f32 {
        self.intents.first().map(|(_, p)| *p).unwrap_or(0.0)
    }
}

/// Classifies one message; the encoder runs on the inference threads, so
/// the async task only waits.
pub async fn understand(
    pool: &InferencePool,
    classifier: &Classifier,
    text: &str,
    locale: &str,
) -> Result<Understanding, ServiceError> {
    let lang =
        Language::from_locale(locale).unwrap_or_else(|| xiaoer_models::detect_language(text));
    let text = crate::cues::without_declined_person(text).into_owned();
    let views = pool.embed(text.clone(), TextRole::Query).await?;
    let intent = classifier.intent(&views.classification);
    let sentiment = classifier.sentiment(&views.classification, &text);
    let request = classifier.request(&views.classification);
    Ok(Understanding {
        text,
        lang,
        embedding: views.retrieval,
        intents: intent.ranked,
        out_of_scope: intent.out_of_scope,
        sentiment: sentiment.label,
        anger: sentiment.p_angry,
        asks_staff_action: request.staff_action,
    })
}
