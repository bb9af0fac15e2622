//! The dump's timestamp: a `SystemTime` as RFC 3339 in UTC
//! (`2026-11-30T10:41:07Z`), by civil-from-days arithmetic rather than a
//! date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` as RFC 3339 UTC, to the second, or to the millisecond if `millis`
/// (`2026-11-30T10:41:07.250Z`). Times before 1970 work too.
pub(crate) fn rfc3339(t: SystemTime, millis: bool) -> String {
    // Whole milliseconds since the epoch, rounded towards minus infinity.
    let ms: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i128,
        Err(e) => {
            let d = e.duration();
            let whole = d.as_millis() as i128;
            -(whole + i128::from(d.as_nanos() % 1_000_000 != 0))
        }
    };
    let secs = ms.div_euclid(1000) as i64;
    let frac = ms.rem_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, sod % 3600 / 60, sod % 60);
    if millis {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{frac:03}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }
}

/// Milliseconds since the Unix epoch (negative before it), for JSON.
pub(crate) fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// The proleptic Gregorian date (year, month 1-12, day 1-31) of a day
/// counted from 1970-01-01 (Howard Hinnant's `civil_from_days`: eras of 400
/// years, each of 146097 days, with years starting on 1 March so that the
/// leap day falls last).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: i64) -> SystemTime {
        if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs as u64)
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        }
    }

    #[test]
    fn known_epochs() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (86_399, "1970-01-01T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_800, "2000-03-01T00:00:00Z"),
            (1_000_000_000, "2001-09-09T01:46:40Z"),
            (1_234_567_890, "2009-02-13T23:31:30Z"),
            (1_709_164_800, "2024-02-29T00:00:00Z"),
            (1_796_035_267, "2026-11-30T10:41:07Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (-86_400, "1969-12-31T00:00:00Z"),
            (-2_208_988_800, "1900-01-01T00:00:00Z"),
        ] {
            assert_eq!(rfc3339(at(secs), false), text, "{secs}");
        }
    }

    #[test]
    fn milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_796_035_267_250);
        assert_eq!(rfc3339(t, true), "2026-11-30T10:41:07.250Z");
        assert_eq!(unix_millis(t), 1_796_035_267_250);
        // Before the epoch, the fraction counts forward from the second below.
        let t = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(rfc3339(t, true), "1969-12-31T23:59:59.999Z");
        assert_eq!(unix_millis(t), -1);
        let t = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(rfc3339(t, true), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        // days_from_civil, the inverse, to check civil_from_days against.
        fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
            let y = if m <= 2 { y - 1 } else { y };
            let era = y.div_euclid(400);
            let yoe = y.rem_euclid(400);
            let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
            let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            era * 146_097 + doe - 719_468
        }
        let mut prev = civil_from_days(-146_098);
        for days in -146_097..146_097 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((y, m, d) > prev);
            prev = (y, m, d);
        }
    }
}
