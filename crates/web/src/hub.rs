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

#[cfg(test)]
mod tests {
    use super::directory_url;

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
}
