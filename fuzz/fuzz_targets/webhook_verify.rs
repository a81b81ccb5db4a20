#![no_main]
//! Any headers and body, for any source: `verify` never panics (signed
//! timestamps at the edges of i64 included).

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    // Layout: source, header count, then per header a name byte, a length
    // byte and the value; the rest is the body.
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let mut headers = Vec::new();
    if let Some((&count, after)) = rest.split_first() {
        rest = after;
        for _ in 0..(count % 8) {
            let [name, len, tail @ ..] = rest else { break };
            let len = (*len as usize).min(tail.len());
            headers.push((*name, &tail[..len]));
            rest = &tail[len..];
        }
    }
    common::with_request(pick, &headers, rest, |source, request| {
        let _ = source.adapter.verify(request);
    });
});
