//! The time window of one poll cycle, for the pollers whose helpdesk
//! filters by creation (or modification) time: Freshdesk, Chatwoot,
//! Gorgias and DevRev. Zendesk keeps its own high-water mark.
//!
//! A cycle reads `[start, until]`. `until` is fixed when the cycle starts,
//! so page numbers stay stable while it runs and a restart resumes the same
//! set. The next cycle starts at the previous `until` minus the overlap:
//! everything created before that was visible to the previous cycle, and
//! the overlap re-reads recent ratings that may have changed since.

use serde::{Deserialize, Serialize};

use super::PollRequest;

/// A cycle's window, Unix ms; saved inside each poller's cursor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: i64,
    pub until_ms: i64,
}

impl Window {
    /// The window for this page: the saved one while a cycle is under way
    /// (`resume`: the next page, or a page cursor saved before a restart);
    /// a new one at the start of a cycle.
    pub fn for_request(saved: Option<Window>, resume: bool, request: &PollRequest) -> Window {
        let until = request.until_ms.unwrap_or(request.now_ms);
        match saved {
            Some(window) if resume || !request.new_cycle => window,
            Some(window) => Window {
                // Never before the window first asked for, never after its end.
                start_ms: (window.until_ms - request.overlap_ms)
                    .max(window.start_ms)
                    .min(until),
                until_ms: until.max(window.until_ms),
            },
            None => Window {
                start_ms: request.since_ms.min(until),
                until_ms: until,
            },
        }
    }

    /// Whether a time falls inside the window (both ends included).
    pub fn contains(&self, ms: i64) -> bool {
        (self.start_ms..=self.until_ms).contains(&ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(new_cycle: bool, overlap_ms: i64, until_ms: Option<i64>) -> PollRequest {
        PollRequest {
            cursor: None,
            new_cycle,
            overlap_ms,
            since_ms: 1_000,
            until_ms,
            now_ms: 50_000,
        }
    }

    #[test]
    fn a_first_cycle_reads_from_since_until_now() {
        let w = Window::for_request(None, false, &request(true, 0, None));
        assert_eq!((w.start_ms, w.until_ms), (1_000, 50_000));
    }

    #[test]
    fn a_new_cycle_rereads_the_overlap_before_the_last_end() {
        let saved = Window {
            start_ms: 1_000,
            until_ms: 40_000,
        };
        let w = Window::for_request(Some(saved), false, &request(true, 5_000, None));
        assert_eq!((w.start_ms, w.until_ms), (35_000, 50_000));
        // Mid-cycle the saved window stands, so page numbers stay stable.
        let w = Window::for_request(Some(saved), true, &request(true, 5_000, None));
        assert_eq!(w, saved);
    }

    #[test]
    fn a_finished_backfill_has_nothing_left_to_read() {
        let saved = Window {
            start_ms: 1_000,
            until_ms: 20_000,
        };
        let w = Window::for_request(Some(saved), false, &request(true, 0, Some(20_000)));
        assert_eq!((w.start_ms, w.until_ms), (20_000, 20_000));
    }
}
