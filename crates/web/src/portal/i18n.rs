//! Portal text in Fluent: English, Dutch, German, French and Spanish (those
//! of them `portal.languages` allows), chosen from the session's explicit
//! choice, then the user's language, then `Accept-Language`. A message
//! missing in a language falls back to English, never to its key; a
//! regional tag (`de-AT`) speaks its base language. Dates and times are
//! written in the language and in `portal.time_zone`.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use std::sync::{Arc, OnceLock};
use unic_langid::LanguageIdentifier;

const SOURCES: &[(&str, &str)] = &[
    ("en", include_str!("../../locales/en.ftl")),
    ("nl", include_str!("../../locales/nl.ftl")),
    ("de", include_str!("../../locales/de.ftl")),
    ("fr", include_str!("../../locales/fr.ftl")),
    ("es", include_str!("../../locales/es.ftl")),
];

/// Every language with text, in its own name.
pub const LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("nl", "Nederlands"),
    ("de", "Deutsch"),
    ("fr", "Français"),
    ("es", "Español"),
];

/// The languages of `LANGUAGES` that `allowed` (`portal.languages`) lets
/// the portal speak; all of them when it names none we have.
pub fn allowed_languages(allowed: &[String]) -> Vec<(&'static str, &'static str)> {
    let mine: Vec<_> = LANGUAGES
        .iter()
        .copied()
        .filter(|(code, _)| allowed.iter().any(|a| a == code))
        .collect();
    if mine.is_empty() {
        LANGUAGES.to_vec()
    } else {
        mine
    }
}

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

/// A translator for one language, with the languages the portal offers
/// and the time zone its dates are written in.
#[derive(Clone)]
pub struct Tr {
    pub lang: String,
    bundle: Arc<Bundle>,
    fallback: Arc<Bundle>,
    /// The header's language choice (`portal.languages`).
    pub languages: Vec<(&'static str, &'static str)>,
    time_zone: jiff::tz::TimeZone,
}

impl Tr {
    /// `lang` may carry a region (`de-AT`: German text).
    pub fn new(lang: &str) -> Tr {
        let all = bundles();
        let fallback = all[0].1.clone();
        let base = lang.split(['-', '_']).next().unwrap_or("");
        let (lang, bundle) = all
            .iter()
            .find(|(l, _)| l == lang)
            .or_else(|| all.iter().find(|(l, _)| l == base))
            .cloned()
            .unwrap_or_else(|| all[0].clone());
        Tr {
            lang,
            bundle,
            fallback,
            languages: LANGUAGES.to_vec(),
            time_zone: jiff::tz::TimeZone::UTC,
        }
    }

    /// The same translator offering `languages` and writing dates in
    /// `time_zone` (UTC when the name is unknown here).
    pub fn within(mut self, languages: &[String], time_zone: &str) -> Tr {
        self.languages = allowed_languages(languages);
        self.time_zone = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        self
    }

    fn zoned(&self, at: time::OffsetDateTime) -> Option<jiff::Zoned> {
        jiff::Timestamp::from_second(at.unix_timestamp())
            .ok()
            .map(|ts| ts.to_zoned(self.time_zone.clone()))
    }

    /// A moment today-ish: `14:05 CET`, in the portal's time zone.
    pub fn time(&self, at: time::OffsetDateTime) -> String {
        self.zoned(at)
            .map(|z| z.strftime("%H:%M %Z").to_string())
            .unwrap_or_default()
    }

    /// A day, in words of this language: `30 November 2026`, `30. November 2026`.
    pub fn date(&self, at: time::OffsetDateTime) -> String {
        let Some(z) = self.zoned(at) else {
            return String::new();
        };
        self.args(
            "date",
            &[
                ("day", z.day().to_string()),
                ("month", self.t(&format!("month-{}", z.month()))),
                ("year", z.year().to_string()),
            ],
        )
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
    allowed: &[(&'static str, &'static str)],
) -> String {
    let base = |l: &str| {
        l.split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    let supported = |l: &str| allowed.iter().any(|(code, _)| *code == base(l));
    for l in [explicit, user].into_iter().flatten() {
        if supported(l) {
            return base(l);
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
    if supported("en") {
        "en".to_string()
    } else {
        allowed
            .first()
            .map_or_else(|| "en".to_string(), |(code, _)| (*code).to_string())
    }
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
        let all = LANGUAGES;
        assert_eq!(negotiate(Some("nl"), Some("en"), None, all), "nl");
        assert_eq!(negotiate(None, Some("nl"), Some("en"), all), "nl");
        assert_eq!(
            negotiate(None, None, Some("de-DE,nl;q=0.8,en;q=0.5"), all),
            "de"
        );
        assert_eq!(negotiate(None, None, Some("en-GB,nl;q=0.9"), all), "en");
        assert_eq!(negotiate(None, None, Some("fr"), all), "fr");
        assert_eq!(negotiate(None, None, Some("pt-BR"), all), "en");
        assert_eq!(negotiate(Some("xx"), None, Some("nl;q=0"), all), "en");
        // A regional tag speaks its base language.
        assert_eq!(negotiate(None, Some("de-AT"), None, all), "de");
        // Only what portal.languages allows.
        let some = allowed_languages(&["nl".into(), "de".into()]);
        assert_eq!(
            negotiate(Some("fr"), None, Some("es,de;q=0.5"), &some),
            "de"
        );
        assert_eq!(negotiate(None, None, Some("fr"), &some), "nl");
        assert_eq!(allowed_languages(&[]).len(), LANGUAGES.len());
    }

    #[test]
    fn dates_and_times_in_language_and_zone() {
        let at = time::macros::datetime!(2026-11-30 13:05 UTC);
        let t = Tr::new("de-AT").within(&["de".into()], "Europe/Berlin");
        assert_eq!(t.lang, "de");
        assert_eq!(t.time(at), "14:05 CET");
        assert_eq!(t.date(at), "30. November 2026");
        let t = Tr::new("en");
        assert_eq!(t.time(at), "13:05 UTC");
        assert_eq!(t.date(at), "30 November 2026");
        for (lang, _) in LANGUAGES {
            let d = Tr::new(lang).date(at);
            assert!(d.contains("2026") && !d.contains("month-"), "{lang}: {d}");
        }
        // An unknown zone (from an older server, say) is UTC.
        assert_eq!(
            Tr::new("en").within(&[], "Mars/Olympus").time(at),
            "13:05 UTC"
        );
    }

    #[test]
    fn every_placeable_of_english_is_in_every_language() {
        fn placeables(src: &str) -> std::collections::BTreeMap<String, BTreeSet<String>> {
            src.lines()
                .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && l.contains(" ="))
                .map(|l| {
                    let (k, v) = l.split_once(" =").unwrap_or((l, ""));
                    let names = v
                        .split("{ $")
                        .skip(1)
                        .filter_map(|p| p.split(' ').next())
                        .map(str::to_string)
                        .collect();
                    (k.trim().to_string(), names)
                })
                .collect()
        }
        let en = placeables(SOURCES[0].1);
        for (lang, src) in SOURCES {
            let other = placeables(src);
            for (key, names) in &en {
                assert_eq!(other.get(key), Some(names), "{lang}: {key}");
            }
        }
    }

    #[test]
    fn arguments_are_filled_in() {
        let tr = Tr::new("nl");
        assert!(tr.t1("bypass-active", "until", "12:00").contains("12:00"));
        assert_eq!(Tr::new("zz").lang, "en");
    }
}
