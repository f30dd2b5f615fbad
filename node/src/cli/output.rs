//! Printing results: text for people, one JSON object for scripts.

use serde_json::Value;

/// Prints `value` as JSON if `json`, else `text`.
pub fn print(json: bool, value: Value, text: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        let t = text();
        if !t.is_empty() {
            println!("{t}");
        }
    }
}

/// A message id's short form (the first 12 hex digits).
pub fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}
