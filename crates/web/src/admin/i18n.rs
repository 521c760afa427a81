//! The admin pages' text, in English and Dutch: a Fluent bundle of its own
//! (`locales/admin/`), so the portal's five languages need not carry pages
//! only administrators read. Language: the administrator's saved language,
//! then `Accept-Language`; English otherwise.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::sync::{Arc, OnceLock};
use unic_langid::LanguageIdentifier;

pub const SOURCES: &[(&str, &str)] = &[
    ("en", include_str!("../../locales/admin/en.ftl")),
    ("nl", include_str!("../../locales/admin/nl.ftl")),
];

type Bundle = FluentBundle<FluentResource>;

fn bundles() -> &'static Vec<(&'static str, Arc<Bundle>)> {
    static BUNDLES: OnceLock<Vec<(&'static str, Arc<Bundle>)>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(lang, src)| {
                let id: LanguageIdentifier = lang.parse().expect("static language id");
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // Isolation marks would end up inside HTML attributes.
                bundle.set_use_isolating(false);
                let res = FluentResource::try_new((*src).to_string())
                    .expect("admin locale files parse (checked by tests)");
                bundle
                    .add_resource(res)
                    .expect("no duplicate messages (checked by tests)");
                (*lang, Arc::new(bundle))
            })
            .collect()
    })
}

#[derive(Clone)]
pub struct AdminTr {
    pub lang: &'static str,
    bundle: Arc<Bundle>,
    fallback: Arc<Bundle>,
}

impl AdminTr {
    /// The first of `preferences` (language tags, best first) we have text
    /// for; English otherwise.
    pub fn pick<'a>(preferences: impl IntoIterator<Item = &'a str>) -> AdminTr {
        let all = bundles();
        let chosen = preferences
            .into_iter()
            .filter_map(|p| p.split(['-', '_']).next())
            .find_map(|base| {
                all.iter()
                    .find(|(l, _)| l.eq_ignore_ascii_case(base.trim()))
            })
            .unwrap_or(&all[0]);
        AdminTr {
            lang: chosen.0,
            bundle: chosen.1.clone(),
            fallback: all[0].1.clone(),
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
        tracing::error!(key, "missing admin text");
        key.to_string()
    }

    pub fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    pub fn t1(&self, key: &str, name: &str, value: impl std::fmt::Display) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_string(), FluentValue::from(value.to_string()));
        self.format(key, Some(&args))
    }
}

/// The languages an `Accept-Language` header asks for, best first.
pub fn accepted(header: Option<&str>) -> Vec<String> {
    let Some(header) = header else {
        return Vec::new();
    };
    let mut prefs: Vec<(u16, String)> = header
        .split(',')
        .filter_map(|part| {
            let mut bits = part.trim().split(';');
            let tag = bits.next()?.trim().to_ascii_lowercase();
            let q = bits
                .find_map(|b| b.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            // Whole thousandths: the order, without float comparisons.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let q = (q.clamp(0.0, 1.0) * 1000.0) as u16;
            (q > 0 && !tag.is_empty()).then_some((q, tag))
        })
        .collect();
    prefs.sort_by_key(|p| std::cmp::Reverse(p.0));
    prefs.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(src: &str) -> std::collections::BTreeSet<String> {
        src.lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && l.contains(" ="))
            .map(|l| l.split(" =").next().unwrap_or("").trim().to_string())
            .collect()
    }

    #[test]
    fn english_and_dutch_have_the_same_messages_and_parse() {
        for (lang, src) in SOURCES {
            assert!(
                FluentResource::try_new((*src).to_string()).is_ok(),
                "admin/{lang}.ftl does not parse"
            );
        }
        assert_eq!(keys(SOURCES[0].1), keys(SOURCES[1].1));
    }

    #[test]
    fn languages_are_picked_in_order_with_english_last() {
        assert_eq!(AdminTr::pick(["nl-BE"]).lang, "nl");
        assert_eq!(AdminTr::pick(["de", "nl"]).lang, "nl");
        assert_eq!(AdminTr::pick(["de"]).lang, "en");
        assert_eq!(
            accepted(Some("de;q=0.9, nl;q=0.8, en;q=0.1")),
            vec!["de", "nl", "en"]
        );
        assert_eq!(AdminTr::pick(["nl"]).t("title-users"), "Gebruikers");
    }
}
