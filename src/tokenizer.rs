//! Byte-level BPE (HF tokenizers) with the chat special tokens, saved as `tokenizer.json`.

use std::str::FromStr;

use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, NormalizerWrapper, TokenizerBuilder};

use crate::bail;
use crate::corpus::{format_prompt, ASSISTANT, END, SPECIAL_TOKENS, USER};
use crate::error::{Error, ErrorKind, Result};

/// Room a question must leave in the context for its answer: a sentence of this model's answers.
pub const MIN_ANSWER_TOKENS: usize = 16;

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    pub user: u32,
    pub assistant: u32,
    pub end: u32,
}

fn tk_err(what: &str) -> impl Fn(tokenizers::Error) -> Error + '_ {
    move |e| Error::new(ErrorKind::BadInput, format!("{what}: {e}"))
}

impl Tokenizer {
    /// Trains a byte-level BPE of at most `vocab_size` tokens on the given documents.
    pub fn train(docs: &[String], vocab_size: usize) -> Result<Tokenizer> {
        // No prefix space: decoding must give back exactly the text that was encoded.
        let byte_level = ByteLevel::default().add_prefix_space(false);
        let mut tk = TokenizerBuilder::<BPE, NormalizerWrapper, ByteLevel, ByteLevel, ByteLevel>::new()
            .with_model(BPE::default())
            .with_normalizer(None)
            .with_pre_tokenizer(Some(byte_level))
            .with_post_processor(Some(byte_level))
            .with_decoder(Some(byte_level))
            .build()
            .map_err(tk_err("building the tokenizer"))?;
        let mut trainer = BpeTrainerBuilder::new()
            .show_progress(false)
            .vocab_size(vocab_size)
            .min_frequency(2)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .special_tokens(SPECIAL_TOKENS.iter().map(|s| AddedToken::from(s.to_string(), true)).collect())
            .build();
        tk.train(&mut trainer, docs.iter()).map_err(tk_err("training the tokenizer"))?;
        let json = tk.to_string(false).map_err(tk_err("serializing the tokenizer"))?;
        Tokenizer::from_json(&json)
    }

    /// Loads a `tokenizer.json`; it must define the chat special tokens.
    pub fn from_json(json: &str) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_str(json).map_err(tk_err("tokenizer.json is not a valid HF tokenizer"))?;
        let id = |t: &str| inner.token_to_id(t).ok_or_else(|| Error::new(ErrorKind::BadInput, format!("tokenizer.json lacks the special token {t}")));
        Ok(Tokenizer { user: id(USER)?, assistant: id(ASSISTANT)?, end: id(END)?, inner })
    }

    pub fn to_json(&self) -> Result<String> {
        self.inner.to_string(true).map_err(tk_err("serializing the tokenizer"))
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(tk_err("encoding text"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// A question's token ids in the chat format (`<|user|>…<|assistant|>`), checked to leave room
    /// in a context of `n_ctx` for an answer of at least `MIN_ANSWER_TOKENS` tokens.
    pub fn prompt_ids(&self, prompt: &str, n_ctx: usize) -> Result<Vec<u32>> {
        if prompt.trim().is_empty() {
            bail!("the question is empty");
        }
        let ids = self.encode(&format_prompt(prompt))?;
        let most = n_ctx.saturating_sub(MIN_ANSWER_TOKENS);
        if ids.len() > most {
            bail!("the question is {} tokens; this model's context of {n_ctx} leaves room for an answer after at most {most}", ids.len());
        }
        Ok(ids)
    }

    /// An answer as the model wrote it, up to its first special token: a model that starts another
    /// turn (`<|user|>`, `<|assistant|>`) has ended its answer there, and no special token is ever
    /// shown inside an answer.
    pub fn answer_ids<'a>(&self, ids: &'a [u32]) -> &'a [u32] {
        let n = ids.iter().position(|&t| t == self.user || t == self.assistant || t == self.end).unwrap_or(ids.len());
        &ids[..n]
    }

    pub fn answer_text(&self, ids: &[u32]) -> Result<String> {
        self.decode(self.answer_ids(ids))
    }

    /// Decodes ids to text, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= self.vocab_size()) {
            bail!("token id {bad} is outside the tokenizer's vocabulary of {}", self.vocab_size());
        }
        self.inner.decode(ids, false).map_err(tk_err("decoding tokens"))
    }
}
