//! Where a model's files are, from what a user types: a file URL, a directory URL, a Hugging
//! Face repository page, or a bare hub id.

/// The directory URL (ending in `/`) whose `config.json`, `model.safetensors` and
/// `tokenizer.json` the page fetches.
pub fn directory_url(url: &str) -> Result<String, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("enter a URL, e.g. https://huggingface.co/gpt2/resolve/main/model.safetensors".into());
    }
    if !url.contains("://") {
        if url.contains(char::is_whitespace) || url.split('/').count() > 2 || url.starts_with('/') {
            return Err(format!("`{url}` is neither a URL nor a Hugging Face model id"));
        }
        return Ok(format!("https://huggingface.co/{url}/resolve/main/"));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}`: only http(s) URLs can be downloaded"));
    }
    // A hub file's page (`/blob/`) is HTML; the file itself is under `/resolve/`.
    let resolved = url.replacen("/blob/", "/resolve/", 1);
    let url = resolved.as_str();
    let last = url.rsplit('/').next().unwrap_or("");
    if last.contains('.') && !url.ends_with('/') {
        return Ok(url[..url.len() - last.len()].to_string());
    }
    let base = url.trim_end_matches('/');
    // A hub repository page (huggingface.co/org/name): its files live under resolve/main.
    let path = base.split("://").nth(1).unwrap_or("");
    if path.starts_with("huggingface.co/") && !path.contains("/resolve/") && path.split('/').count() <= 3 {
        return Ok(format!("{base}/resolve/main/"));
    }
    Ok(format!("{base}/"))
}

/// Checks a downloaded file before it is kept in browser storage: a server can answer 200 with
/// anything (an HTML page, a login form, a truncated file), and a stored bad answer would be
/// served again on every visit. Known names are parsed as what they must be; sizes must be
/// plausible for a model directory.
pub fn check_download(name: &str, bytes: &[u8]) -> Result<(), String> {
    let html = bytes.trim_ascii_start().first() == Some(&b'<');
    let hint =
        if html { " (the server sent an HTML page: use a /resolve/ URL, not a /blob/ page)" } else { "" };
    match name {
        "config.json" => {
            hearth_lm::ModelConfig::from_json(bytes).map(|_| ()).map_err(|e| format!("{e}{hint}"))
        }
        "model.safetensors" => {
            let file =
                hearth_lm::io::weights::SafetensorsFile::parse(bytes).map_err(|e| format!("{e}{hint}"))?;
            if file.total_elements() == 0 {
                return Err("model.safetensors holds no weights".into());
            }
            Ok(())
        }
        "tokenizer.json" => {
            hearth_lm::Tokenizer::from_bytes(bytes).map(|_| ()).map_err(|e| format!("{e}{hint}"))
        }
        "model.safetensors.index.json" => {
            hearth_lm::io::hf::shard_files(bytes).map(|_| ()).map_err(|e| format!("{e}{hint}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::{check_download, directory_url};

    #[test]
    fn urls_resolve_to_directories() {
        let hub = "https://huggingface.co/gpt2/resolve/main/";
        assert_eq!(directory_url("https://huggingface.co/gpt2/resolve/main/model.safetensors").unwrap(), hub);
        assert_eq!(directory_url("https://huggingface.co/gpt2").unwrap(), hub);
        assert_eq!(directory_url(" gpt2 ").unwrap(), hub);
        assert_eq!(
            directory_url("google-bert/bert-base-uncased").unwrap(),
            "https://huggingface.co/google-bert/bert-base-uncased/resolve/main/"
        );
        assert_eq!(
            directory_url("http://127.0.0.1:8000/gpt2-tiny").unwrap(),
            "http://127.0.0.1:8000/gpt2-tiny/"
        );
        assert_eq!(
            directory_url("http://127.0.0.1:8000/gpt2-tiny/").unwrap(),
            "http://127.0.0.1:8000/gpt2-tiny/"
        );
    }

    #[test]
    fn bad_urls_are_explained() {
        assert!(directory_url("").is_err());
        assert!(directory_url("file:///etc/passwd").is_err());
        assert!(directory_url("not a url").is_err());
        assert!(directory_url("/etc/passwd").is_err());
    }

    #[test]
    fn blob_pages_resolve_to_files() {
        assert_eq!(
            directory_url("https://huggingface.co/gpt2/blob/main/config.json").unwrap(),
            "https://huggingface.co/gpt2/resolve/main/"
        );
    }

    #[test]
    fn html_and_truncated_downloads_are_not_kept() {
        let page = b"<!DOCTYPE html><html><body>gpt2</body></html>";
        let err = check_download("config.json", page).unwrap_err();
        assert!(err.contains("HTML page"), "{err}");
        assert!(check_download("model.safetensors", page).is_err());
        assert!(check_download("model.safetensors", b"\x08\x00\x00").is_err());
        assert!(check_download("tokenizer.json", b"{").is_err());
        assert!(check_download("model.safetensors.index.json", page).unwrap_err().contains("HTML page"));
        let index = br#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
        assert!(check_download("model.safetensors.index.json", index).is_ok());
        assert!(check_download(
            "model.safetensors.index.json",
            br#"{"weight_map": {"a": "../x.safetensors"}}"#
        )
        .is_err());
        assert!(check_download("config.json", br#"{"model_type": "gpt2", "vocab_size": 10, "n_positions": 8, "n_embd": 4, "n_layer": 1, "n_head": 2}"#).is_ok());
    }
}
