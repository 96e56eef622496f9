//! Times on the pages. Every time a page shows goes through [`time`]: in the viewer's own time
//! zone when they chose one on /account, with the UTC time on hover; without one, the page's
//! script rewrites it to the browser's zone (`data-local`), and until then it reads in UTC.

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::pages::Nav;

/// A moment, as templates pass it: a time or a reference to one.
pub trait Moment {
    fn moment(&self) -> DateTime<Utc>;
}

impl Moment for DateTime<Utc> {
    fn moment(&self) -> DateTime<Utc> {
        *self
    }
}

impl<T: Moment + ?Sized> Moment for &T {
    fn moment(&self) -> DateTime<Utc> {
        (**self).moment()
    }
}

/// A `<time>` element for one moment.
pub struct LocalTime {
    at: DateTime<Utc>,
    zone: Option<Tz>,
}

/// `{{ crate::web::time(nav, ticket.updated_at) }}`: the moment in the viewer's zone.
pub fn time(nav: &Option<Nav>, at: &impl Moment) -> LocalTime {
    LocalTime {
        at: at.moment(),
        zone: nav.as_ref().and_then(|nav| nav.time_zone),
    }
}

const SHOWN: &str = "%Y-%m-%d %H:%M";

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only digits, dashes, colons and "UTC" are written: nothing here needs escaping.
        let datetime = self.at.to_rfc3339();
        let utc = self.at.format("%Y-%m-%d %H:%M:%S UTC");
        match self.zone {
            Some(zone) => write!(
                f,
                "<time datetime=\"{datetime}\" title=\"{utc}\">{}</time>",
                self.at.with_timezone(&zone).format(SHOWN)
            ),
            None => write!(
                f,
                "<time datetime=\"{datetime}\" title=\"{utc}\" data-local>{}</time>",
                self.at.format(SHOWN)
            ),
        }
    }
}

impl askama::filters::HtmlSafe for LocalTime {}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(at: &str, zone: Option<Tz>) -> String {
        let at: DateTime<Utc> = at.parse().expect("a time");
        LocalTime { at, zone }.to_string()
    }

    #[test]
    fn a_chosen_zone_follows_daylight_saving_time() {
        let summer = shown("2026-07-01T12:00:00Z", Some(Tz::Europe__Berlin));
        assert!(summer.contains(">2026-07-01 14:00</time>"), "{summer}");
        assert!(
            summer.contains("title=\"2026-07-01 12:00:00 UTC\""),
            "{summer}"
        );
        let winter = shown("2026-12-01T12:00:00Z", Some(Tz::Europe__Berlin));
        assert!(winter.contains(">2026-12-01 13:00</time>"), "{winter}");
        let browser = shown("2026-12-01T12:00:00Z", None);
        assert!(
            browser.contains("data-local>2026-12-01 12:00</time>"),
            "{browser}"
        );
    }
}
