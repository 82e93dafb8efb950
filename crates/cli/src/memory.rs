//! How much memory a run may use: `--max-memory`, or what the machine has available now.

/// Bytes from a size such as `6G`, `512M`, `1.5GB` or `8000000000` (decimal units, as the
/// error messages print them; `Gi`/`Mi` binary).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a size (e.g. 6G, 512M)"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("`{other}` is not a size unit (use K, M, G or T)")),
    };
    let bytes = value * scale;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}` is not a usable memory size"));
    }
    Ok(bytes as u64)
}

/// `MemAvailable` of `/proc/meminfo`: what the kernel can give without swapping.
fn available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The budget a run is checked against: `--max-memory` if given, else the available memory,
/// else (where the OS does not say) no limit beyond what no machine could hold.
pub fn budget(max_memory: Option<&str>) -> Result<u64, String> {
    match max_memory {
        Some(size) => parse_size(size).map_err(|e| format!("--max-memory: {e}")),
        None => Ok(available().unwrap_or(u64::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_size("6G").unwrap(), 6_000_000_000);
        assert_eq!(parse_size("1.5GB").unwrap(), 1_500_000_000);
        assert_eq!(parse_size("512Mi").unwrap(), 512 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "G", "-1G", "lots", "1e400", "3Q", "NaN"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
