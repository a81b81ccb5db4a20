#![no_main]
//! Any body, for any source: `parse` and the delivery key never panic.

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    // Help Scout reads its event name from a header; give it the rating one.
    let headers: [(u8, &[u8]); 1] = [(8, b"satisfaction.ratings")];
    common::with_request(pick, &headers, body, |source, request| {
        let parsed = source.adapter.parse(request);
        let _ = csatwatch::intake::delivery_key(parsed.as_ref().ok(), body);
    });
});
