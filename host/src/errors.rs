//! Helpers for error text shared by the HTTP clients (NetBox, PRTG, webhooks).

/// An error's message followed by each of its sources (`a: b: c`): reqwest's top-level
/// message alone ("error sending request") hides the reason (refused, timed out, TLS).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
