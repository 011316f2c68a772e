//! Bounds on what a session may ask a CAS to generate. SCONE documents no upper bound for a
//! secret's `size` or a certificate's `valid_for`; these are ours, generous for any real use,
//! and shared by the validator and the development CAS so that a manifest that validates is
//! never refused at apply, and no request can make the CAS allocate without bound.

/// Largest `size` of an `ascii` or `binary` secret: 64 KiB.
pub const MAX_SECRET_SIZE: u64 = 64 * 1024;

/// Longest `valid_for` of a certificate: 100 years (of 365 days).
pub const MAX_VALID_FOR_SECONDS: i64 = 100 * YEAR;

const YEAR: i64 = 31_536_000;

/// Why a secret's `size` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeError {
    NotANumber,
    Zero,
    TooLarge,
}

/// A secret's `size`: a positive number of characters (`ascii`) or bytes (`binary`), at most
/// [`MAX_SECRET_SIZE`].
pub fn secret_size(text: &str) -> Result<usize, SizeError> {
    let n: u64 = text.trim().parse().map_err(|_| {
        if !text.trim().is_empty() && text.trim().bytes().all(|b| b.is_ascii_digit()) {
            SizeError::TooLarge
        } else {
            SizeError::NotANumber
        }
    })?;
    match n {
        0 => Err(SizeError::Zero),
        n if n > MAX_SECRET_SIZE => Err(SizeError::TooLarge),
        n => Ok(n as usize),
    }
}

/// Why a `valid_for` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    NotADuration,
    TooLong,
}

/// `90 days`, `1 year`, `59d`, `12 hours`: a duration in seconds, at most
/// [`MAX_VALID_FOR_SECONDS`].
pub fn valid_for(text: &str) -> Result<i64, DurationError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if split == 0 {
        return Err(DurationError::NotADuration);
    }
    let unit = t[split..].trim();
    let seconds = match unit
        .strip_suffix('s')
        .filter(|u| u.len() > 1)
        .unwrap_or(unit)
    {
        "" | "s" | "second" => 1,
        "m" | "minute" | "min" => 60,
        "h" | "hour" => 3_600,
        "d" | "day" => 86_400,
        "w" | "week" => 604_800,
        "y" | "year" => YEAR,
        _ => return Err(DurationError::NotADuration),
    };
    // A count too long for u64 is far beyond the bound, not malformed.
    let n: i64 = t[..split].parse().unwrap_or(i64::MAX);
    match n.checked_mul(seconds) {
        Some(total) if total <= MAX_VALID_FOR_SECONDS => Ok(total),
        _ => Err(DurationError::TooLong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_the_forms_sessions_use() {
        assert_eq!(valid_for("90 days"), Ok(90 * 86_400));
        assert_eq!(valid_for("1 year"), Ok(YEAR));
        assert_eq!(valid_for("59d"), Ok(59 * 86_400));
        assert_eq!(valid_for("12 hours"), Ok(12 * 3_600));
        assert_eq!(valid_for("30s"), Ok(30));
        assert_eq!(valid_for("100 years"), Ok(MAX_VALID_FOR_SECONDS));
        assert_eq!(valid_for("soon"), Err(DurationError::NotADuration));
        assert_eq!(valid_for("5 fortnights"), Err(DurationError::NotADuration));
        assert_eq!(valid_for("101 years"), Err(DurationError::TooLong));
        assert_eq!(valid_for("99999999999 years"), Err(DurationError::TooLong));
        assert_eq!(
            valid_for("99999999999999999999999 years"),
            Err(DurationError::TooLong)
        );
    }

    #[test]
    fn sizes_are_positive_and_bounded() {
        assert_eq!(secret_size("32"), Ok(32));
        assert_eq!(secret_size("65536"), Ok(65_536));
        assert_eq!(secret_size("65537"), Err(SizeError::TooLarge));
        assert_eq!(secret_size("4294967295"), Err(SizeError::TooLarge));
        assert_eq!(
            secret_size("18446744073709551615"),
            Err(SizeError::TooLarge)
        );
        assert_eq!(
            secret_size("99999999999999999999999"),
            Err(SizeError::TooLarge)
        );
        assert_eq!(secret_size("0"), Err(SizeError::Zero));
        assert_eq!(secret_size("-1"), Err(SizeError::NotANumber));
        assert_eq!(secret_size("big"), Err(SizeError::NotANumber));
    }
}
