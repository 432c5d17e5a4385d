//! Header maps with Envoy's `HeaderMapImpl` semantics: lower-case names, insertion order with
//! pseudo-headers kept in front, duplicates allowed.

/// A header map as a list of (name, value).
pub(crate) type HeaderList = Vec<(String, String)>;

/// The first value of `name` (case-insensitive), like Envoy's `get(...)[0]`.
pub(crate) fn get<'a>(map: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    map.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

/// `addCopy`: appends, except that a pseudo-header goes after the existing pseudo-headers.
pub(crate) fn add(map: &mut HeaderList, name: &str, value: &str) {
    let name = name.to_ascii_lowercase();
    if name.starts_with(':') {
        let at = map.iter().take_while(|(k, _)| k.starts_with(':')).count();
        map.insert(at, (name, value.to_owned()));
    } else {
        map.push((name, value.to_owned()));
    }
}

/// `setCopy`: Envoy replaces the value of the **first** entry and keeps any later duplicates
/// (`HeaderMapImpl::setCopy`); adds when absent.
pub(crate) fn replace(map: &mut HeaderList, name: &str, value: &str) {
    let lower = name.to_ascii_lowercase();
    match map.iter_mut().find(|(k, _)| *k == lower) {
        Some(entry) => value.clone_into(&mut entry.1),
        None => add(map, &lower, value),
    }
}

/// `remove`: drops every entry of `name`.
pub(crate) fn remove(map: &mut HeaderList, name: &str) {
    let name = name.to_ascii_lowercase();
    map.retain(|(k, _)| *k != name);
}

/// `setHeaderMapPairs`: removes every existing entry, then adds the pairs in order.
pub(crate) fn set_all(map: &mut HeaderList, pairs: &[(String, String)]) {
    map.clear();
    for (k, v) in pairs {
        add(map, k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a map from a test's pairs: names lower-cased, pseudo-headers first.
    fn from_pairs(pairs: &[(&str, &str)]) -> HeaderList {
        let mut map = HeaderList::new();
        for (k, v) in pairs {
            add(&mut map, k, v);
        }
        map
    }

    #[test]
    fn behaves_like_envoy_header_maps() {
        let mut map = from_pairs(&[("X-A", "1"), (":path", "/"), ("x-a", "2")]);
        assert_eq!(map[0].0, ":path");
        assert_eq!(get(&map, "x-A"), Some("1"));
        add(&mut map, ":Method", "GET");
        assert_eq!(map[1], (":method".into(), "GET".into()));
        replace(&mut map, "X-A", "3");
        assert_eq!(
            map.iter()
                .filter(|(k, _)| k == "x-a")
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>(),
            ["3", "2"]
        );
        replace(&mut map, "x-new", "n");
        assert_eq!(map.last().unwrap().0, "x-new");
        remove(&mut map, "X-A");
        assert_eq!(get(&map, "x-a"), None);
        remove(&mut map, "absent");
        set_all(&mut map, &[("B".into(), "b".into())]);
        assert_eq!(map, vec![("b".to_string(), "b".to_string())]);
    }
}
