//! Text analysis shared by indexing and querying. The same analyzer must run
//! on both sides or terms never meet, so queries are tokenized here rather
//! than by tantivy's `QueryParser` (which splits on whitespace and therefore
//! finds nothing for unspaced Chinese).

use tantivy::tokenizer::{
    Language, LowerCaser, RegexTokenizer, RemoveLongFilter, Stemmer, TextAnalyzer, Token,
    TokenFilter, TokenStream, Tokenizer,
};
use tantivy_jieba::JiebaTokenizer;

use crate::error::KbError;

/// Name under which the Chinese analyzer is registered in the index.
pub(crate) const ZH_TOKENIZER: &str = "xiaoer_zh";
/// Name under which the English analyzer is registered in the index.
pub(crate) const EN_TOKENIZER: &str = "xiaoer_en";

/// Tokens longer than this (bytes) are noise such as URLs or order numbers.
const MAX_TOKEN_BYTES: usize = 40;

/// Chinese: jieba in search mode (also emits the shorter words inside long
/// compounds, so 七天无理由退货 matches 退货), without punctuation, whitespace
/// or emoji tokens, lowercased so embedded English ("order") matches any case.
pub(crate) fn zh_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(JiebaTokenizer::new())
        .filter(WordOnly)
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .build()
}

/// English: runs of Latin letters and digits (so "我的order到哪了" still yields
/// "order"), lowercased and Snowball-stemmed so "refunds"/"refunded" meet "refund".
pub(crate) fn en_analyzer() -> Result<TextAnalyzer, KbError> {
    Ok(
        TextAnalyzer::builder(RegexTokenizer::new(r"[\p{Latin}\p{N}]+")?)
            .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
            .filter(LowerCaser)
            .filter(Stemmer::new(Language::English))
            .build(),
    )
}

/// The distinct tokens of `text`, in first-seen order.
pub(crate) fn distinct_tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        if !out.contains(&token.text) {
            out.push(token.text.clone());
        }
    }
    out
}

/// Drops tokens without a single letter or digit (punctuation, spaces, emoji).
/// tantivy's `AlphaNumOnlyFilter` is ASCII-only and would drop every Chinese word.
#[derive(Clone)]
pub(crate) struct WordOnly;

impl TokenFilter for WordOnly {
    type Tokenizer<T: Tokenizer> = WordOnlyTokenizer<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> WordOnlyTokenizer<T> {
        WordOnlyTokenizer(tokenizer)
    }
}

#[derive(Clone)]
pub(crate) struct WordOnlyTokenizer<T>(T);

impl<T: Tokenizer> Tokenizer for WordOnlyTokenizer<T> {
    type TokenStream<'a> = WordOnlyStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        WordOnlyStream(self.0.token_stream(text))
    }
}

pub(crate) struct WordOnlyStream<S>(S);

impl<S: TokenStream> TokenStream for WordOnlyStream<S> {
    fn advance(&mut self) -> bool {
        while self.0.advance() {
            if self.0.token().text.chars().any(char::is_alphanumeric) {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.0.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.0.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zh_drops_punctuation_and_lowercases() {
        let tokens = distinct_tokens(&mut zh_analyzer(), "亲，我的ORDER到哪了？？ 😊");
        assert!(tokens.contains(&"order".to_string()), "{tokens:?}");
        assert!(
            tokens.iter().all(|t| t.chars().any(char::is_alphanumeric)),
            "{tokens:?}"
        );
        assert!(!tokens.iter().any(|t| t.trim().is_empty()), "{tokens:?}");
    }

    #[test]
    fn zh_search_mode_splits_compounds() {
        let tokens = distinct_tokens(&mut zh_analyzer(), "七天无理由退货");
        assert!(tokens.contains(&"退货".to_string()), "{tokens:?}");
    }

    #[test]
    fn en_stems_and_ignores_chinese() {
        let tokens = distinct_tokens(
            &mut en_analyzer().expect("analyzer"),
            "Refunds REFUNDED, 我的order到哪了!",
        );
        assert_eq!(tokens, vec!["refund", "order"]);
    }
}
