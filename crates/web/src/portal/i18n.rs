//! Portal text in Fluent: English and Dutch, chosen from the session's
//! explicit choice, then the user's language, then `Accept-Language`.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::sync::{Arc, OnceLock};
use unic_langid::LanguageIdentifier;

const SOURCES: &[(&str, &str)] = &[
    ("en", include_str!("../../locales/en.ftl")),
    ("nl", include_str!("../../locales/nl.ftl")),
];

pub const LANGUAGES: &[(&str, &str)] = &[("en", "English"), ("nl", "Nederlands")];

type Bundle = FluentBundle<FluentResource>;

fn bundles() -> &'static Vec<(String, Arc<Bundle>)> {
    static BUNDLES: OnceLock<Vec<(String, Arc<Bundle>)>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(lang, src)| {
                let id: LanguageIdentifier = lang.parse().expect("static language id");
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // Isolation marks would end up inside HTML attributes.
                bundle.set_use_isolating(false);
                let res = FluentResource::try_new(src.to_string())
                    .expect("locale files parse (checked by tests)");
                bundle
                    .add_resource(res)
                    .expect("no duplicate messages (checked by tests)");
                (lang.to_string(), Arc::new(bundle))
            })
            .collect()
    })
}

/// A translator for one language.
#[derive(Clone)]
pub struct Tr {
    pub lang: String,
    bundle: Arc<Bundle>,
    fallback: Arc<Bundle>,
}

impl Tr {
    pub fn new(lang: &str) -> Tr {
        let all = bundles();
        let fallback = all[0].1.clone();
        let (lang, bundle) = all
            .iter()
            .find(|(l, _)| l == lang)
            .cloned()
            .unwrap_or_else(|| all[0].clone());
        Tr {
            lang,
            bundle,
            fallback,
        }
    }

    fn format(&self, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        for bundle in [&self.bundle, &self.fallback] {
            if let Some(pattern) = bundle.get_message(key).and_then(|m| m.value()) {
                let mut errors = vec![];
                return bundle
                    .format_pattern(pattern, args, &mut errors)
                    .into_owned();
            }
        }
        tracing::error!(key, "missing portal text");
        key.to_string()
    }

    /// The text for `key`.
    pub fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The text for `key` with named arguments.
    pub fn args(&self, key: &str, args: &[(&str, String)]) -> String {
        let mut a = FluentArgs::new();
        for (name, value) in args {
            a.set((*name).to_string(), FluentValue::from(value.clone()));
        }
        self.format(key, Some(&a))
    }

    /// The text for `key` with one argument.
    pub fn t1(&self, key: &str, name: &str, value: impl std::fmt::Display) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_string(), FluentValue::from(value.to_string()));
        self.format(key, Some(&args))
    }
}

/// Picks a supported language: explicit choice, user setting, then the
/// browser's `Accept-Language` in its order of preference.
pub fn negotiate(
    explicit: Option<&str>,
    user: Option<&str>,
    accept_language: Option<&str>,
) -> String {
    let supported = |l: &str| LANGUAGES.iter().any(|(code, _)| *code == l);
    for l in [explicit, user].into_iter().flatten() {
        if supported(l) {
            return l.to_string();
        }
    }
    if let Some(header) = accept_language {
        let mut prefs: Vec<(f32, String)> = header
            .split(',')
            .filter_map(|part| {
                let mut bits = part.trim().split(';');
                let tag = bits.next()?.trim().to_ascii_lowercase();
                let q = bits
                    .find_map(|b| {
                        b.trim()
                            .strip_prefix("q=")
                            .and_then(|q| q.parse::<f32>().ok())
                    })
                    .unwrap_or(1.0);
                Some((q, tag.split('-').next()?.to_string()))
            })
            .collect();
        prefs.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        if let Some((_, l)) = prefs.into_iter().find(|(q, l)| *q > 0.0 && supported(l)) {
            return l;
        }
    }
    "en".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn keys(src: &str) -> BTreeSet<String> {
        src.lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && l.contains(" ="))
            .map(|l| l.split(" =").next().unwrap_or("").trim().to_string())
            .collect()
    }

    #[test]
    fn every_language_is_complete_and_parses() {
        let en = keys(SOURCES[0].1);
        assert!(en.len() > 50);
        for (lang, src) in SOURCES {
            FluentResource::try_new(src.to_string())
                .unwrap_or_else(|_| panic!("{lang}.ftl does not parse"));
            let k = keys(src);
            let missing: Vec<_> = en.difference(&k).collect();
            let extra: Vec<_> = k.difference(&en).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{lang}: missing {missing:?}, extra {extra:?}"
            );
        }
        assert_eq!(bundles().len(), SOURCES.len());
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(Some("nl"), Some("en"), None), "nl");
        assert_eq!(negotiate(None, Some("nl"), Some("en")), "nl");
        assert_eq!(negotiate(None, None, Some("de-DE,nl;q=0.8,en;q=0.5")), "nl");
        assert_eq!(negotiate(None, None, Some("en-GB,nl;q=0.9")), "en");
        assert_eq!(negotiate(None, None, Some("fr")), "en");
        assert_eq!(negotiate(Some("xx"), None, Some("nl;q=0")), "en");
    }

    #[test]
    fn arguments_are_filled_in() {
        let tr = Tr::new("nl");
        assert!(tr.t1("bypass-active", "until", "12:00").contains("12:00"));
        assert_eq!(Tr::new("zz").lang, "en");
    }
}
