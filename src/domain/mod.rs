//! Our own validated types: scales, sentiments and the normalised rating.
//! No I/O and no helpdesk-specific shapes live here.

pub mod rating;
pub mod scale;

pub use rating::{RatingEvent, Score, SourceName, Via, non_empty};
pub use scale::{Scale, Sentiment, SurveyKind};
