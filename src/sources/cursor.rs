//! The poll loop every poller shares, written once: read the saved cursor
//! of a request, work out this page's window or position, ask the
//! helpdesk's client for that page, and save the next cursor. A client
//! supplies only what is its own: the request for a window (or position)
//! and page token, and the parse of the page ([`Page`]).
//!
//! Two kinds of cursor:
//!
//! - [`WindowCursor`], through [`WindowPoller`] and [`poll_window`], for the
//!   helpdesks that filter by creation (or modification) time or not at all
//!   (Freshdesk, Chatwoot, Gorgias, DevRev, Help Scout). A cycle reads
//!   `[start, until]`. `until` is fixed when the cycle starts, so page
//!   numbers stay stable while it runs and a restart resumes the same set.
//!   The next cycle starts at the previous `until` minus the overlap:
//!   everything created before that was visible to the previous cycle, and
//!   the overlap re-reads recent ratings that may have changed since.
//! - [`HighWaterCursor`], through [`HighWaterPoller`] and
//!   [`poll_high_water`], for the helpdesks that list by change time from a
//!   start (Zendesk, Intercom, HubSpot): a new cycle starts the overlap
//!   before the newest change seen.

use std::future::Future;

use crate::domain::RatingEvent;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{FetchError, PollPage, PollRequest};

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
    /// `page` and `next_page` are the names Chatwoot's, Freshdesk's and Help
    /// Scout's cursors were saved with.
    #[serde(default, alias = "page", alias = "next_page")]
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
    /// `end_ms` is the name Help Scout's cursors were saved with.
    #[serde(alias = "end_ms")]
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

/// One page as a helpdesk's client read it: what only the client knows.
#[derive(Debug)]
pub struct Page<P> {
    pub ratings: Vec<RatingEvent>,
    /// Where the next page of this window starts (a page number, or the
    /// helpdesk's own page cursor); `None` once the window is read.
    pub next: Option<P>,
    /// Requests left in the helpdesk's current rate-limit window, when it says.
    pub remaining: Option<u64>,
    /// High-water pollers: the newest change time this page showed (Unix ms).
    pub newest_ms: Option<i64>,
    /// High-water pollers: page no further but start a new window here
    /// (HubSpot's search stops at 10,000 results a query).
    pub restart_at_ms: Option<i64>,
}

impl<P> Page<P> {
    pub fn new(ratings: Vec<RatingEvent>, next: Option<P>) -> Page<P> {
        Page {
            ratings,
            next,
            remaining: None,
            newest_ms: None,
            restart_at_ms: None,
        }
    }
}

/// A client whose helpdesk is read window by window ([`WindowCursor`]).
pub trait WindowPoller: Send + Sync {
    /// The helpdesk's page token: a page number or its own cursor.
    type Next: Serialize + DeserializeOwned + Send + Sync;

    /// Reads the page `next` (the first when `None`) of `window`.
    fn read_page(
        &self,
        http: &reqwest::Client,
        window: Window,
        next: Option<&Self::Next>,
        request: &PollRequest,
    ) -> impl Future<Output = Result<Page<Self::Next>, FetchError>> + Send;
}

/// Reads one page of a [`WindowPoller`] and saves where the next starts.
pub async fn poll_window<W: WindowPoller>(
    poller: &W,
    http: &reqwest::Client,
    request: &PollRequest,
) -> Result<PollPage, FetchError> {
    let position = WindowCursor::<W::Next>::for_request(request);
    let page = poller
        .read_page(http, position.window, position.next.as_ref(), request)
        .await?;
    let more = page.next.is_some();
    Ok(PollPage {
        ratings: page.ratings,
        cursor: save(&WindowCursor {
            window: position.window,
            next: page.next,
        }),
        more,
        remaining: page.remaining,
    })
}

/// The cursor of the pollers that list by change time from a start: the
/// window's start, the helpdesk's cursor for the next page of it, and the
/// newest change seen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    from = "StoredHighWater<P>",
    bound(deserialize = "P: DeserializeOwned", serialize = "P: Serialize")
)]
pub struct HighWaterCursor<P> {
    /// The window's start, Unix ms.
    pub start_ms: i64,
    /// The helpdesk's cursor for the next page of this window.
    pub after: Option<P>,
    /// The newest change seen, Unix ms.
    pub high_water_ms: i64,
}

/// A saved [`HighWaterCursor`], also in the shapes the Zendesk (seconds)
/// and Intercom (seconds, `starting_after`) pollers saved before they
/// shared it.
#[derive(Deserialize)]
#[serde(bound(deserialize = "P: DeserializeOwned"))]
struct StoredHighWater<P> {
    #[serde(default)]
    start_ms: Option<i64>,
    #[serde(default)]
    start_time: Option<i64>,
    #[serde(default)]
    since_s: Option<i64>,
    #[serde(default, alias = "starting_after")]
    after: Option<P>,
    #[serde(default)]
    high_water_ms: Option<i64>,
    #[serde(default)]
    high_water_s: Option<i64>,
}

impl<P> From<StoredHighWater<P>> for HighWaterCursor<P> {
    fn from(stored: StoredHighWater<P>) -> Self {
        let seconds = |s: Option<i64>| s.map(|s| s.saturating_mul(1000));
        HighWaterCursor {
            start_ms: stored
                .start_ms
                .or(seconds(stored.start_time))
                .or(seconds(stored.since_s))
                .unwrap_or(0),
            after: stored.after,
            high_water_ms: stored
                .high_water_ms
                .or(seconds(stored.high_water_s))
                .unwrap_or(0),
        }
    }
}

impl<P: DeserializeOwned> HighWaterCursor<P> {
    /// This page's position: the saved one mid-window (the next page, or a
    /// window cut short by a restart or an error); at the start of a cycle
    /// a new window from the overlap before the newest change seen; on the
    /// very first page, from `since_ms`.
    pub fn for_request(request: &PollRequest) -> HighWaterCursor<P> {
        match saved::<HighWaterCursor<P>>(request) {
            Some(saved) if !request.new_cycle || saved.after.is_some() => saved,
            Some(saved) => HighWaterCursor {
                start_ms: (saved.high_water_ms - request.overlap_ms).max(saved.start_ms),
                after: None,
                high_water_ms: saved.high_water_ms,
            },
            None => HighWaterCursor {
                start_ms: request.since_ms,
                after: None,
                high_water_ms: request.since_ms,
            },
        }
    }
}

/// A client whose helpdesk lists by change time ([`HighWaterCursor`]).
pub trait HighWaterPoller: Send + Sync {
    /// The helpdesk's page cursor.
    type After: Serialize + DeserializeOwned + Send + Sync;

    /// Reads the page of `cursor` (its start and its `after`).
    fn read_page(
        &self,
        http: &reqwest::Client,
        cursor: &HighWaterCursor<Self::After>,
        request: &PollRequest,
    ) -> impl Future<Output = Result<Page<Self::After>, FetchError>> + Send;
}

/// Reads one page of a [`HighWaterPoller`], moves the high-water mark and
/// saves where the next page starts.
pub async fn poll_high_water<H: HighWaterPoller>(
    poller: &H,
    http: &reqwest::Client,
    request: &PollRequest,
) -> Result<PollPage, FetchError> {
    let mut cursor = HighWaterCursor::<H::After>::for_request(request);
    let page = poller.read_page(http, &cursor, request).await?;
    if let Some(newest) = page.newest_ms {
        cursor.high_water_ms = cursor.high_water_ms.max(newest);
    }
    let more = match page.restart_at_ms {
        Some(start_ms) => {
            cursor.start_ms = start_ms;
            cursor.after = None;
            true
        }
        None => {
            cursor.after = page.next;
            cursor.after.is_some()
        }
    };
    Ok(PollPage {
        ratings: page.ratings,
        cursor: save(&cursor),
        more,
        remaining: page.remaining,
    })
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

    #[test]
    fn a_high_water_cursor_reads_the_shapes_saved_before_it_was_shared() {
        let zendesk: HighWaterCursor<String> =
            serde_json::from_str(r#"{"start_time":40,"after":"c2","high_water_ms":45000}"#)
                .unwrap();
        assert_eq!(
            (
                zendesk.start_ms,
                zendesk.after.as_deref(),
                zendesk.high_water_ms
            ),
            (40_000, Some("c2"), 45_000)
        );
        let intercom: HighWaterCursor<String> =
            serde_json::from_str(r#"{"since_s":40,"starting_after":"x","high_water_s":45}"#)
                .unwrap();
        assert_eq!(
            (
                intercom.start_ms,
                intercom.after.as_deref(),
                intercom.high_water_ms
            ),
            (40_000, Some("x"), 45_000)
        );
        let hubspot: HighWaterCursor<String> =
            serde_json::from_str(&save(&HighWaterCursor::<String> {
                start_ms: 7,
                after: None,
                high_water_ms: 9,
            }))
            .unwrap();
        assert_eq!(
            (hubspot.start_ms, hubspot.after, hubspot.high_water_ms),
            (7, None, 9)
        );
    }

    #[test]
    fn a_new_high_water_cycle_starts_the_overlap_before_the_newest_change() {
        let mut r = request(true, 5_000, None);
        r.cursor = Some(r#"{"start_ms":1000,"high_water_ms":40000}"#.into());
        let c = HighWaterCursor::<String>::for_request(&r);
        assert_eq!((c.start_ms, c.high_water_ms), (35_000, 40_000));
        // Mid-window the saved position stands.
        r.new_cycle = false;
        let c = HighWaterCursor::<String>::for_request(&r);
        assert_eq!(c.start_ms, 1_000);
        // The very first page reads from since.
        r.cursor = None;
        let c = HighWaterCursor::<String>::for_request(&r);
        assert_eq!((c.start_ms, c.high_water_ms), (1_000, 1_000));
    }

    #[test]
    fn a_help_scout_cursor_saved_before_the_window_was_shared_resumes() {
        let mut r = request(true, 0, None);
        r.cursor = Some(r#"{"start_ms":1000,"end_ms":40000,"next_page":3}"#.into());
        let c = WindowCursor::<u32>::for_request(&r);
        assert_eq!(
            (c.window.start_ms, c.window.until_ms, c.next),
            (1_000, 40_000, Some(3))
        );
    }
}
