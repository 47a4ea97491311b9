//! Say each problem once: when it appears or its text changes, not at every watch event.

use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Once {
    said: BTreeMap<String, String>,
}

impl Once {
    /// The entries of `now` that are new or changed since the last call (to be logged);
    /// those no longer in `now` are forgotten, so they are said again if they come back.
    pub fn news(
        &mut self,
        now: impl IntoIterator<Item = (String, String)>,
    ) -> Vec<(String, String)> {
        let now: BTreeMap<String, String> = now.into_iter().collect();
        let news = now
            .iter()
            .filter(|(k, v)| self.said.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.said = now;
        news
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_new_and_changed_entries_once() {
        let mut o = Once::default();
        let e = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(o.news([e("a", "x")]), [e("a", "x")]);
        assert!(o.news([e("a", "x")]).is_empty());
        assert_eq!(
            o.news([e("a", "y"), e("b", "z")]),
            [e("a", "y"), e("b", "z")]
        );
        assert!(o.news([e("b", "z")]).is_empty());
        assert_eq!(o.news([e("a", "y"), e("b", "z")]), [e("a", "y")]);
    }
}
