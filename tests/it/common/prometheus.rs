//! A strict reader of the Prometheus text format 0.0.4, for tests that scrape `/metrics`.

use std::collections::{BTreeMap, HashMap};

pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Default)]
pub struct Exposition {
    /// Family name → type.
    pub types: HashMap<String, String>,
    /// (sample name, labels) → value.
    pub samples: HashMap<(String, Labels), f64>,
}

impl Exposition {
    /// Parses and validates: every line a HELP, a TYPE or a sample; every sample of a family
    /// typed before it; no duplicate series; histograms with monotone `_bucket{le}` ending at
    /// `+Inf` = `_count`, and a `_sum`. Panics, naming the line, on anything else.
    pub fn parse(text: &str) -> Self {
        let mut e = Exposition::default();
        let mut helped = HashMap::new();
        let mut order: Vec<(String, Labels)> = vec![];
        for (n, line) in text.lines().enumerate() {
            let at = || format!("line {}: {line:?}", n + 1);
            assert!(!line.is_empty(), "empty line at {}", at());
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
                assert!(valid_name(name) && !help.is_empty(), "{}", at());
                assert!(
                    helped.insert(name.to_owned(), ()).is_none(),
                    "HELP twice: {}",
                    at()
                );
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("{}", at()));
                assert!(valid_name(name), "{}", at());
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "{}",
                    at()
                );
                assert!(
                    e.types.insert(name.into(), kind.into()).is_none(),
                    "TYPE twice: {}",
                    at()
                );
            } else {
                assert!(!line.starts_with('#'), "unknown comment {}", at());
                let (name, labels, value) =
                    sample(line).unwrap_or_else(|| panic!("bad sample {}", at()));
                let family = family_of(&name, &e.types);
                let kind = e
                    .types
                    .get(&family)
                    .unwrap_or_else(|| panic!("untyped sample {}", at()));
                if kind == "counter" || kind == "histogram" {
                    assert!(value >= 0.0, "negative {}", at());
                }
                let key = (name, labels);
                assert!(!e.samples.contains_key(&key), "duplicate series {}", at());
                order.push(key.clone());
                e.samples.insert(key, value);
            }
        }
        e.check_histograms(&order);
        e
    }

    fn check_histograms(&self, order: &[(String, Labels)]) {
        for (family, _) in self.types.iter().filter(|(_, k)| *k == "histogram") {
            let bucket = format!("{family}_bucket");
            // Buckets of each series, in exposition order.
            let mut series: BTreeMap<Labels, Vec<(String, f64)>> = BTreeMap::new();
            for (name, labels) in order.iter().filter(|(n, _)| *n == bucket) {
                let mut base = labels.clone();
                let le = base
                    .remove("le")
                    .unwrap_or_else(|| panic!("{bucket} without le"));
                series
                    .entry(base)
                    .or_default()
                    .push((le, self.samples[&(name.clone(), labels.clone())]));
            }
            for (labels, buckets) in series {
                let mut last_le = f64::NEG_INFINITY;
                let mut last = 0.0;
                for (le, v) in &buckets {
                    let le_v: f64 = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    };
                    assert!(
                        le_v > last_le,
                        "{family}{labels:?}: le not increasing at {le}"
                    );
                    assert!(
                        *v >= last,
                        "{family}{labels:?}: bucket {le} below the previous"
                    );
                    last_le = le_v;
                    last = *v;
                }
                assert_eq!(
                    buckets.last().map(|b| b.0.as_str()),
                    Some("+Inf"),
                    "{family}{labels:?}"
                );
                let count = self
                    .get(&format!("{family}_count"), &labels)
                    .unwrap_or_else(|| panic!("{family}{labels:?} has no _count"));
                assert_eq!(count, last, "{family}{labels:?}: +Inf bucket != _count");
                assert!(
                    self.get(&format!("{family}_sum"), &labels).is_some(),
                    "{family}{labels:?} has no _sum"
                );
            }
        }
    }

    pub fn get(&self, name: &str, labels: &Labels) -> Option<f64> {
        self.samples
            .get(&(name.to_owned(), labels.clone()))
            .copied()
    }

    /// The value of `name` with exactly these labels, 0 when the series does not exist.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, &labels_of(labels)).unwrap_or(0.0)
    }

    /// Every series of `name` whose labels include these.
    pub fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(&Labels, f64)> {
        self.samples
            .iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|((_, l), v)| (l, *v))
            .collect()
    }
}

pub fn labels_of(labels: &[(&str, &str)]) -> Labels {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn family_of(sample: &str, types: &HashMap<String, String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample.strip_suffix(suffix) {
            if types
                .get(base)
                .is_some_and(|k| k == "histogram" || k == "summary")
            {
                return base.to_owned();
            }
        }
    }
    sample.to_owned()
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `name{k="v",...} value` (no timestamps: keyplane writes none).
fn sample(line: &str) -> Option<(String, Labels, f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return None;
    }
    let mut labels = Labels::new();
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let mut r = r;
        loop {
            if let Some(after) = r.strip_prefix('}') {
                r = after;
                break;
            }
            let eq = r.find('=')?;
            let key = &r[..eq];
            if !valid_name(key) || key.contains(':') {
                return None;
            }
            r = r[eq + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        _ => return None,
                    },
                    '"' => break i,
                    c => value.push(c),
                }
            };
            if labels.insert(key.to_owned(), value).is_some() {
                return None;
            }
            r = &r[end + 1..];
            r = r.strip_prefix(',').unwrap_or(r);
        }
        rest = r;
    }
    let value = rest.strip_prefix(' ')?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some((name.to_owned(), labels, value))
}
