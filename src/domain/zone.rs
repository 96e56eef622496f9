//! The time zone a person reads times in: an IANA name such as "Europe/Berlin".

use chrono_tz::Tz;

/// Why a text is not a time zone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IANA time zone name (such as Europe/Berlin or America/New_York)")]
pub struct UnknownZone(pub String);

/// The zone named `name` (exactly as the IANA database spells it, or in any case).
pub fn parse_zone(name: &str) -> Result<Tz, UnknownZone> {
    let name = name.trim();
    name.parse::<Tz>()
        .ok()
        .or_else(|| {
            chrono_tz::TZ_VARIANTS
                .iter()
                .copied()
                .find(|zone| zone.name().eq_ignore_ascii_case(name))
        })
        .ok_or_else(|| UnknownZone(name.to_owned()))
}

/// Every zone name, for a menu.
pub fn zone_names() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|zone| zone.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_against_the_database() {
        assert_eq!(parse_zone("Europe/Berlin"), Ok(Tz::Europe__Berlin));
        assert_eq!(parse_zone(" europe/berlin "), Ok(Tz::Europe__Berlin));
        assert!(parse_zone("Mars/Olympus").is_err());
        assert!(parse_zone("").is_err());
    }
}
