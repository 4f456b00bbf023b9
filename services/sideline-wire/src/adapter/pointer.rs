//! JSON pointers (RFC 6901) into vendor messages, with two additions the vendors' shapes need:
//!
//! - a leading `^` resolves against the whole message instead of the current record
//!   (`^/value/frame`: the frame number every tag of an RTLOC message shares);
//! - a segment `name[key=value]` picks, from the array `name`, the first element whose member
//!   `key` is the string (or number) `value` (Sewio's `datastreams[id=posX]`).
//!
//! Numbers may arrive as JSON numbers or as numeric strings (Sewio sends `" 6.34"`):
//! [`number`] reads both.

use serde_json::Value;

/// The value `pointer` designates in `record` (or, with a leading `^`, in `root`).
pub fn resolve<'a>(root: &'a Value, record: &'a Value, pointer: &str) -> Option<&'a Value> {
    let (mut at, rest) = match pointer.strip_prefix('^') {
        Some(rest) => (root, rest),
        None => (record, pointer),
    };
    if rest.is_empty() {
        return Some(at);
    }
    let rest = rest.strip_prefix('/')?;
    for raw in rest.split('/') {
        let seg = raw.replace("~1", "/").replace("~0", "~");
        let (name, select) = match seg.find('[') {
            Some(i) if seg.ends_with(']') => (&seg[..i], Some(&seg[i + 1..seg.len() - 1])),
            _ => (seg.as_str(), None),
        };
        if !name.is_empty() || select.is_none() {
            at = step(at, name)?;
        }
        if let Some(sel) = select {
            let (k, v) = sel.split_once('=')?;
            at = at.as_array()?.iter().find(|e| match e.get(k) {
                Some(Value::String(s)) => s == v,
                Some(Value::Number(n)) => n.to_string() == v,
                _ => false,
            })?;
        }
    }
    Some(at)
}

fn step<'a>(at: &'a Value, name: &str) -> Option<&'a Value> {
    match at {
        Value::Object(m) => m.get(name),
        Value::Array(a) => a.get(name.parse::<usize>().ok()?),
        _ => None,
    }
}

/// A JSON number, or a string holding one (surrounding blanks allowed).
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A check of a pointer's syntax, for configuration errors at start-up.
pub fn check(pointer: &str) -> Result<(), String> {
    let rest = pointer.strip_prefix('^').unwrap_or(pointer);
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err(format!(
            "{pointer:?}: a pointer is empty or starts with / (or ^/ for the whole message)"
        ));
    }
    for seg in rest.split('/').skip(1) {
        if let Some(i) = seg.find('[') {
            let sel = &seg[i..];
            if !sel.ends_with(']') || !sel.contains('=') {
                return Err(format!("{pointer:?}: a selector is [key=value]"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_reach_members_elements_selected_elements_and_the_root() {
        let root = json!({"value": {"frame": 7, "tags": {"a/b": {"pos": [1.5, 2]}}},
                          "body": {"datastreams": [{"id": "posX", "current_value": " 6.34"},
                                                   {"id": 9, "current_value": 1}]}});
        let rec = &root["value"]["tags"]["a/b"];
        assert_eq!(resolve(&root, rec, "/pos/1"), Some(&json!(2)));
        assert_eq!(resolve(&root, rec, "^/value/frame"), Some(&json!(7)));
        assert_eq!(resolve(&root, rec, ""), Some(rec));
        assert_eq!(
            resolve(&root, &root, "/value/tags/a~1b/pos/0"),
            Some(&json!(1.5))
        );
        let x = resolve(&root, &root, "/body/datastreams[id=posX]/current_value").unwrap();
        assert_eq!(number(x), Some(6.34));
        assert!(resolve(&root, &root, "/body/datastreams[id=9]/current_value").is_some());
        assert_eq!(resolve(&root, &root, "/body/datastreams[id=posY]"), None);
        assert_eq!(resolve(&root, rec, "/pos/9"), None);
        assert_eq!(resolve(&root, rec, "pos"), None);
        assert_eq!(number(&json!("x")), None);
        assert!(check("^/a[b=c]/d").is_ok());
        assert!(check("a").is_err() && check("/a[b]").is_err());
    }
}
