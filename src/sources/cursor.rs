//! What every poller's cursor shares: reading the saved cursor of a
//! request and writing the next one ([`saved`], [`save`]), and the time
//! window of one poll cycle ([`Window`]) for the pollers whose helpdesk
//! filters by creation (or modification) time. Pollers that keep a
//! high-water mark instead (Zendesk, Intercom, HubSpot) keep it in their
//! own cursor.
//!
//! A cycle reads `[start, until]`. `until` is fixed when the cycle starts,
//! so page numbers stay stable while it runs and a restart resumes the same
//! set. The next cycle starts at the previous `until` minus the overlap:
//! everything created before that was visible to the previous cycle, and
//! the overlap re-reads recent ratings that may have changed since.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::PollRequest;

/// The cursor saved by the previous page, in the poller's own format;
/// `None` on the very first page (or if it cannot be read, which starts
/// the window again rather than stopping the poller).
pub fn saved<C: DeserializeOwned>(request: &PollRequest) -> Option<C> {
    request
        .cursor
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
}

/// The cursor to save after this page.
pub fn save<C: Serialize>(cursor: &C) -> String {
    serde_json::to_string(cursor).unwrap_or_default()
}

/// The cursor of the pollers that read a [`Window`] page by page: the
/// window, and where the next page starts (a page number, or the
/// helpdesk's own page cursor); `None` once the window is read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(deserialize = "P: DeserializeOwned"))]
pub struct WindowCursor<P> {
    #[serde(flatten)]
    pub window: Window,
    /// `page` is the name Chatwoot's cursors were saved with.
    #[serde(default, alias = "page")]
    pub next: Option<P>,
}

impl<P: DeserializeOwned> WindowCursor<P> {
    /// This page's window and position: the saved ones while a cycle is
    /// under way (or was cut short by a restart), else a new window read
    /// from its first page (`next` is `None`).
    pub fn for_request(request: &PollRequest) -> WindowCursor<P> {
        let saved: Option<WindowCursor<P>> = saved(request);
        let resume = saved.as_ref().is_some_and(|c| c.next.is_some());
        let window = Window::for_request(saved.as_ref().map(|c| c.window), resume, request);
        WindowCursor {
            window,
            next: saved.and_then(|c| c.next).filter(|_| resume),
        }
    }
}

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
    fn a_window_cursor_resumes_mid_cycle_and_reads_older_page_names() {
        let mut r = request(true, 0, None);
        r.cursor = Some(r#"{"start_ms":1000,"until_ms":40000,"page":3}"#.into());
        let c = WindowCursor::<u32>::for_request(&r);
        assert_eq!((c.window.until_ms, c.next), (40_000, Some(3)));
        r.cursor = Some(save(&WindowCursor::<u32> {
            window: c.window,
            next: None,
        }));
        let c = WindowCursor::<u32>::for_request(&r);
        assert_eq!(
            (c.window.start_ms, c.window.until_ms, c.next),
            (40_000, 50_000, None)
        );
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
