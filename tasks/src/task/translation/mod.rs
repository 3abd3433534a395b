//! Translation (placeholder while the task is built).
pub mod bleu;
pub mod bpe;
