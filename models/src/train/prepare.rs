//! Turning the data files into each head's training, validation and
//! held-out examples, and those into embeddings.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use xiaoer_domain::{Intent, RequestLabel, SentimentLabel};

use super::data::{
    load_intents, load_requests, load_sentiment, require_every_class, sha256_hex, Example,
    LabelledSet, Origin, Split,
};
use crate::cache::{embed_queries, ClassificationView};
use crate::{Encoder, Language, ModelError};

/// Loads our data (train + held-out per head) and checks it before any slow work.
pub(super) fn load_own(data_dir: &Path) -> Result<[LabelledSet; 6], ModelError> {
    let files = |task: &str| {
        data_dir
            .join(format!("{task}/train.{{zh,en}}.jsonl"))
            .display()
            .to_string()
    };
    let intents = load_intents(data_dir, Split::Train)?;
    require_every_class(&intents.examples, Intent::ALL, &files("intents"))?;
    let sentiment = load_sentiment(data_dir, Split::Train)?;
    require_every_class(
        &sentiment.examples,
        SentimentLabel::ALL,
        &files("sentiment"),
    )?;
    let requests = load_requests(data_dir, Split::Train)?;
    require_every_class(&requests.examples, RequestLabel::ALL, &files("requests"))?;
    Ok([
        intents,
        load_intents(data_dir, Split::Heldout)?,
        sentiment,
        load_sentiment(data_dir, Split::Heldout)?,
        requests,
        load_requests(data_dir, Split::Heldout)?,
    ])
}

/// Each head's training, validation and held-out examples, in that order.
pub(super) struct HeadSets {
    /// Intent head: own train minus validation plus public data.
    pub(super) intents: [Vec<Example>; 3],
    /// Sentiment head: own files plus small talk borrowed from the intents.
    pub(super) sentiment: [Vec<Example>; 3],
    /// Request head: own files plus intents borrowed as self-service.
    pub(super) requests: [Vec<Example>; 3],
}

impl HeadSets {
    /// All nine splits, intents then sentiment then requests: the order
    /// they are embedded in.
    pub(super) fn all(&self) -> [&[Example]; 9] {
        let [it, iv, ih] = &self.intents;
        let [st, sv, sh] = &self.sentiment;
        let [rt, rv, rh] = &self.requests;
        [it, iv, ih, st, sv, sh, rt, rv, rh]
    }
}

/// Builds each head's splits from our files (as [`load_own`] returns them)
/// and the public examples: validation is carved from our own train files
/// only (stratified, `val_fraction`), public data joins training, and the
/// sentiment and request heads borrow intent examples split by split, so
/// held-out intents never reach training. `data_dir` names the data in the
/// error when a validation split comes out empty.
pub(super) fn head_sets(
    own: [LabelledSet; 6],
    public_intents: LabelledSet,
    public_sentiment: LabelledSet,
    val_fraction: f32,
    seed: u64,
    data_dir: &Path,
) -> Result<HeadSets, ModelError> {
    let [intent_train, intent_heldout, sentiment_train, sentiment_heldout, request_train, request_heldout] =
        own;
    // Each head's validation split draws from its own stream, so examples
    // added to one head's files leave the other heads' splits (and heads)
    // as they were.
    let split_rng = |stream: u64| ChaCha12Rng::seed_from_u64(seed ^ 0x5_9117 ^ (stream << 32));
    let (mut it_train, it_val) =
        split_validation(intent_train.examples, val_fraction, &mut split_rng(0));
    it_train.extend(public_intents.examples);
    let (mut st_train, mut st_val) =
        split_validation(sentiment_train.examples, val_fraction, &mut split_rng(1));
    st_train.extend(public_sentiment.examples);
    st_train.extend(small_talk_as_neutral(&it_train));
    st_val.extend(small_talk_as_neutral(&it_val));
    let mut st_heldout = sentiment_heldout.examples;
    st_heldout.extend(small_talk_as_neutral(&intent_heldout.examples));
    let (mut rq_train, mut rq_val) =
        split_validation(request_train.examples, val_fraction, &mut split_rng(2));
    // Our intent examples are nearly all questions and requests the bot can
    // serve: as `self_service` they give the request head the real mix of
    // traffic, where asking staff to act is the exception (each split stays
    // within its own split, so held-out intents never reach training).
    let request_labelled: HashSet<String> = rq_train
        .iter()
        .chain(&rq_val)
        .chain(&request_heldout.examples)
        .map(|e| e.text.clone())
        .collect();
    rq_train.extend(as_self_service(&it_train, &request_labelled));
    rq_val.extend(as_self_service(&it_val, &request_labelled));
    let mut rq_heldout = request_heldout.examples;
    rq_heldout.extend(as_self_service(&intent_heldout.examples, &request_labelled));
    if it_val.is_empty() || st_val.is_empty() || rq_val.is_empty() {
        return Err(ModelError::Data {
            path: data_dir.display().to_string(),
            reason: format!(
                "validation split is empty (fraction {val_fraction}): too few examples per class"
            ),
        });
    }
    tracing::info!(
        intent_train = it_train.len(),
        intent_val = it_val.len(),
        sentiment_train = st_train.len(),
        sentiment_val = st_val.len(),
        request_train = rq_train.len(),
        request_val = rq_val.len(),
        public_intent = it_train
            .iter()
            .filter(|e| e.origin == Origin::Public)
            .count(),
        "training data ready"
    );
    Ok(HeadSets {
        intents: [it_train, it_val, intent_heldout.examples],
        sentiment: [st_train, st_val, st_heldout],
        requests: [rq_train, rq_val, rq_heldout],
    })
}

/// Splits our own examples into (train, validation), stratified by label and
/// language: `floor(n · fraction)` of each group go to validation, so a
/// class with a single example still trains on it.
fn split_validation(
    examples: Vec<Example>,
    fraction: f32,
    rng: &mut ChaCha12Rng,
) -> (Vec<Example>, Vec<Example>) {
    let mut groups: BTreeMap<(String, Language), Vec<Example>> = BTreeMap::new();
    for e in examples {
        groups.entry((e.label.clone(), e.lang)).or_default().push(e);
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (_, mut group) in groups {
        group.shuffle(rng);
        let n_val = (group.len() as f32 * fraction).floor() as usize;
        let rest = group.split_off(n_val);
        val.extend(group);
        train.extend(rest);
    }
    (train, val)
}

/// Intents whose messages may well ask staff to act (a complaint demanding
/// compensation, "get me a manager"), so they are not borrowed as examples
/// of self-service requests.
const NOT_SELF_SERVICE_INTENTS: [Intent; 2] = [Intent::Complaint, Intent::HumanAgent];

/// Our own intent examples whose intent passes `keep`, relabelled `label`
/// for another head.
fn borrow_intents<'a>(
    intent_examples: &'a [Example],
    keep: impl Fn(Intent) -> bool + 'a,
    label: &'a str,
) -> impl Iterator<Item = Example> + 'a {
    intent_examples
        .iter()
        .filter(move |e| e.origin == Origin::Own && e.label.parse().is_ok_and(&keep))
        .map(move |e| Example {
            label: label.to_string(),
            ..e.clone()
        })
}

/// Our own intent examples outside [`NOT_SELF_SERVICE_INTENTS`], as
/// `self_service` requests, except texts the request files label
/// themselves: an explicit label ("cancel order 5521 for me" as
/// `staff_action`) wins over the default assumption.
fn as_self_service<'a>(
    intent_examples: &'a [Example],
    request_labelled: &'a HashSet<String>,
) -> impl Iterator<Item = Example> + 'a {
    borrow_intents(
        intent_examples,
        |intent| !NOT_SELF_SERVICE_INTENTS.contains(&intent),
        RequestLabel::SelfService.as_str(),
    )
    .filter(|e| !request_labelled.contains(&e.text))
}

/// Intents whose examples are small talk: calm by nature, whatever the topic.
const SMALL_TALK_INTENTS: [Intent; 2] = [Intent::OutOfScope, Intent::Greeting];

/// Our own out-of-scope chit-chat and greetings ("tell me a joke", "hello")
/// as `neutral` sentiment: without them the sentiment head has seen little
/// small talk and may call it angry, handing a bored shopper to a person.
/// Greetings joined after the head, having learned "hello???????" (asked
/// again and again, unanswered) as angry, scored a bare "hello" 0.62.
fn small_talk_as_neutral(intent_examples: &[Example]) -> impl Iterator<Item = Example> + '_ {
    borrow_intents(
        intent_examples,
        |intent| SMALL_TALK_INTENTS.contains(&intent),
        SentimentLabel::Neutral.as_str(),
    )
}

/// SHA-256 of every file in the encoder weights directory, by name: the
/// provenance that refuses heads on other weights.
pub(super) fn hash_dir(dir: &Path) -> Result<BTreeMap<String, String>, ModelError> {
    let err = |e: std::io::Error| ModelError::Data {
        path: dir.display().to_string(),
        reason: format!("cannot read encoder weights directory: {e}"),
    };
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        if entry.file_type().map_err(err)?.is_file() {
            let bytes = std::fs::read(entry.path()).map_err(err)?;
            files.insert(
                entry.file_name().to_string_lossy().into_owned(),
                sha256_hex(&bytes),
            );
        }
    }
    Ok(files)
}

/// One embedding per example, per set, in the sets' order.
pub(super) type SetEmbeddings = Vec<Vec<Vec<f32>>>;

/// Embeds every example of several sets with one cache pass.
pub(super) fn embed_sets(
    cache_dir: &Path,
    encoder: &dyn Encoder,
    sets: &[&[Example]],
) -> Result<SetEmbeddings, ModelError> {
    let texts: Vec<&str> = sets
        .iter()
        .flat_map(|s| s.iter().map(|e| e.text.as_str()))
        .collect();
    let mut all = embed_queries(cache_dir, &ClassificationView::new(encoder)?, &texts)?.into_iter();
    Ok(sets
        .iter()
        .map(|s| all.by_ref().take(s.len()).collect())
        .collect())
}

#[cfg(test)]
mod tests;
