//! Numbers as people read and type them.

/// `1536` → `1.5 KiB`.
/// A byte count from hearth-lm's `u128` estimates, saturated: an absurd config reads as
/// `u64::MAX` bytes, which every limit refuses.
pub fn saturating_bytes(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

pub fn human_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    const MIB: f64 = KIB * 1024.0;
    const GIB: f64 = MIB * 1024.0;
    let b = bytes as f64;
    if b >= GIB {
        format!("{:.2} GiB", b / GIB)
    } else if b >= MIB {
        format!("{:.1} MiB", b / MIB)
    } else if b >= KIB {
        format!("{:.1} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// `124_439_808` → `124.4M`.
pub fn human_count(n: usize) -> String {
    let x = n as f64;
    if x >= 1e9 {
        format!("{:.2}B", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        n.to_string()
    }
}

/// Seconds as `1h 02m`, `3m 05s` or `12s`.
pub fn human_duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "–".into();
    }
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Token ids as typed: `"15496, 11 314"`.
pub fn parse_ids(text: &str) -> Result<Vec<u32>, String> {
    let ids: Vec<u32> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().map_err(|_| format!("`{s}` is not a token id (a whole number ≥ 0)")))
        .collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err("type one or more token ids, e.g. 15496, 11".into());
    }
    Ok(ids)
}

/// A number with `digits` decimals, non-finite ones as a person reads them ("NaN", "∞").
pub fn fixed(v: f64, digits: usize) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "∞" } else { "−∞" }.into()
    } else {
        format!("{v:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_read_as_words() {
        assert_eq!(fixed(f64::NAN, 4), "NaN");
        assert_eq!(fixed(f64::INFINITY, 2), "∞");
        assert_eq!(fixed(f64::NEG_INFINITY, 2), "−∞");
        assert_eq!(fixed(2.0, 2), "2.00");
    }

    #[test]
    fn formats() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(154_389_504), "147.2 MiB");
        assert_eq!(human_count(124_439_808), "124.4M");
        assert_eq!(human_duration(185.0), "3m 05s");
        assert_eq!(human_duration(3720.0), "1h 02m");
    }

    #[test]
    fn ids_parse_with_commas_or_spaces() {
        assert_eq!(parse_ids("15496, 11 314,716").unwrap(), vec![15496, 11, 314, 716]);
        assert!(parse_ids("12, x").is_err());
        assert!(parse_ids("-1").is_err());
        assert!(parse_ids(" , ").is_err());
    }
}
