//! Workload identity federation: an organization trusts an external OIDC issuer (a provider)
//! and maps tokens it signs, by their claims (rules), to one of its project service accounts.
//! A workload then exchanges such a token for a short-lived keyplane access token and stores
//! no secret at all.
//!
//! This module holds the objects, their validation and the two pieces that read an external
//! token: [`expression`] (attribute transformations) and [`subject_token`] (verification).

pub mod expression;
pub mod subject_token;

use std::collections::BTreeMap;

use serde_json::Value;

use super::ids::Id;
use super::names::{self, FieldError};
use super::time::Millis;
use expression::Expression;

/// OpenAI's documented limits.
pub const MAX_PROVIDERS_PER_ORGANIZATION: usize = 50;
pub const MAX_RULES_PER_PROVIDER: usize = 50;
/// keyplane's own bounds, so one object stays small.
pub const MAX_TRANSFORMATIONS: usize = 20;
pub const MAX_MATCHERS: usize = 20;
const MAX_URL_CHARS: usize = 512;
const MAX_ATTRIBUTE_CHARS: usize = 64;
/// An uploaded key set: a few keys, never a document that could bloat every read of it.
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// How a provider's signing keys are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// OpenID discovery: `discovery_url`, or `<issuer>/.well-known/openid-configuration` when
    /// `None`, names the `jwks_uri`.
    Discovery { discovery_url: Option<String> },
    /// A key set given inline (`{"keys": [...]}`), for issuers that cannot be reached.
    UploadedJwks { jwks: Value },
}

impl Verification {
    /// Where discovery starts for this provider.
    pub fn discovery_url(&self, issuer: &str) -> Option<String> {
        match self {
            Verification::Discovery { discovery_url } => {
                Some(discovery_url.clone().unwrap_or_else(|| {
                    format!(
                        "{}/.well-known/openid-configuration",
                        issuer.trim_end_matches('/')
                    )
                }))
            }
            Verification::UploadedJwks { .. } => None,
        }
    }

    /// The wire and storage form: `{"type": "discovery", "discovery_url"}` or
    /// `{"type": "uploaded_jwks", "jwks"}`.
    pub fn to_json(&self) -> Value {
        match self {
            Verification::Discovery { discovery_url } => {
                serde_json::json!({"type": "discovery", "discovery_url": discovery_url})
            }
            Verification::UploadedJwks { jwks } => {
                serde_json::json!({"type": "uploaded_jwks", "jwks": jwks})
            }
        }
    }

    /// [`Self::to_json`] read back (shape only; a key set is validated by [`uploaded_jwks`]).
    pub fn from_json(v: &Value) -> Option<Self> {
        match v.get("type")?.as_str()? {
            "discovery" => Some(Verification::Discovery {
                discovery_url: match v.get("discovery_url") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => return None,
                },
            }),
            "uploaded_jwks" => Some(Verification::UploadedJwks {
                jwks: v.get("jwks").filter(|j| j.is_object())?.clone(),
            }),
            _ => None,
        }
    }
}

/// One derived attribute: `attribute` is what rules match on, computed by `expression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeTransformation {
    pub attribute: String,
    /// The source, as the operator wrote it (what the API shows back).
    pub expression: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: Id,
    pub organization_id: Id,
    pub name: String,
    pub description: Option<String>,
    pub issuer: String,
    pub audience: String,
    pub enabled: bool,
    pub attribute_transformations: Vec<AttributeTransformation>,
    pub verification: Verification,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Kept after deletion (old cursors resolve, exports carry it).
    pub deleted_at: Option<Millis>,
}

impl Provider {
    /// The attributes its transformations derive from verified claims. Every expression was
    /// checked when saved; one that no longer parses (an older build's) yields nothing.
    pub fn attributes(&self, claims: &Value) -> BTreeMap<String, String> {
        self.attribute_transformations
            .iter()
            .filter_map(|t| {
                let value = Expression::parse(&t.expression).ok()?.evaluate(claims)?;
                Some((t.attribute.clone(), value))
            })
            .collect()
    }
}

/// A rule's expected value for one claim or attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatcherValue {
    String(String),
    Bool(bool),
    Number(serde_json::Number),
}

impl MatcherValue {
    pub fn from_json(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(Self::String(s.clone())),
            Value::Bool(b) => Some(Self::Bool(*b)),
            Value::Number(n) => Some(Self::Number(n.clone())),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Self::String(s) => Value::String(s.clone()),
            Self::Bool(b) => Value::Bool(*b),
            Self::Number(n) => Value::Number(n.clone()),
        }
    }

    /// Exact equality with a claim: a string matches the same string, a boolean the same
    /// boolean, a number the same number (`1` and `1.0` alike); never across types.
    fn matches_claim(&self, claim: &Value) -> bool {
        match (self, claim) {
            (Self::String(a), Value::String(b)) => a == b,
            (Self::Bool(a), Value::Bool(b)) => a == b,
            (Self::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            _ => false,
        }
    }
}

/// What a token mapped by a rule may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permissions {
    /// Whatever the service account's own keys may.
    ServiceAccountDefault,
    /// Only these scopes.
    Restricted { scopes: Vec<String> },
}

impl Permissions {
    /// The wire and storage form: `{"type": "service_account_default"}` or
    /// `{"type": "restricted", "scopes": [...]}`.
    pub fn to_json(&self) -> Value {
        match self {
            Permissions::ServiceAccountDefault => {
                serde_json::json!({"type": "service_account_default"})
            }
            Permissions::Restricted { scopes } => {
                serde_json::json!({"type": "restricted", "scopes": scopes})
            }
        }
    }

    pub fn from_json(v: &Value) -> Option<Self> {
        match v.get("type")?.as_str()? {
            "service_account_default" => Some(Permissions::ServiceAccountDefault),
            "restricted" => Some(Permissions::Restricted {
                scopes: v
                    .get("scopes")?
                    .as_array()?
                    .iter()
                    .map(|s| s.as_str().map(str::to_owned))
                    .collect::<Option<_>>()?,
            }),
            _ => None,
        }
    }
}

/// The wire and storage form of transformations: `[{"attribute", "expression"}]`.
pub fn transformations_to_json(list: &[AttributeTransformation]) -> Value {
    Value::Array(
        list.iter()
            .map(|t| serde_json::json!({"attribute": t.attribute, "expression": t.expression}))
            .collect(),
    )
}

pub fn transformations_from_json(v: &Value) -> Option<Vec<AttributeTransformation>> {
    v.as_array()?
        .iter()
        .map(|t| {
            Some(AttributeTransformation {
                attribute: t.get("attribute")?.as_str()?.to_owned(),
                expression: t.get("expression")?.as_str()?.to_owned(),
            })
        })
        .collect()
}

/// The wire and storage form of matchers: `{"claim": scalar}`.
pub fn matchers_to_json(m: &BTreeMap<String, MatcherValue>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

pub fn matchers_from_json(v: &Value) -> Option<BTreeMap<String, MatcherValue>> {
    v.as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), MatcherValue::from_json(v)?)))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationRule {
    pub id: Id,
    pub organization_id: Id,
    pub provider_id: Id,
    pub project_id: Id,
    pub service_account_id: Id,
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
    pub attribute_matchers: BTreeMap<String, MatcherValue>,
    pub permissions: Permissions,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub deleted_at: Option<Millis>,
}

impl FederationRule {
    /// Whether every matcher holds. A matcher's key names a derived attribute when the
    /// provider defines one of that name, else a claim: a top-level claim of that exact name,
    /// or a dotted path into nested claims (`kubernetes.io.namespace`) when no claim has the
    /// whole name.
    pub fn matches(&self, claims: &Value, attributes: &BTreeMap<String, String>) -> bool {
        !self.attribute_matchers.is_empty()
            && self.attribute_matchers.iter().all(|(key, want)| {
                if let Some(attribute) = attributes.get(key) {
                    return matches!(want, MatcherValue::String(s) if s == attribute);
                }
                claim(claims, key).is_some_and(|c| want.matches_claim(c))
            })
    }
}

/// The claim a matcher key names: the member of that exact name, else, splitting the key at a
/// `.`, a member named by the part before it (which may itself hold dots, as `kubernetes.io`
/// does) and the rest looked up inside it. Depth-bounded: keys come from operators, claims
/// from tokens, neither should make this expensive.
fn claim<'a>(claims: &'a Value, key: &str) -> Option<&'a Value> {
    fn find<'a>(v: &'a Value, key: &str, depth: usize) -> Option<&'a Value> {
        let object = v.as_object()?;
        if let Some(found) = object.get(key) {
            return Some(found);
        }
        if depth == 0 {
            return None;
        }
        key.match_indices('.').find_map(|(i, _)| {
            let inner = object.get(&key[..i])?;
            find(inner, &key[i + 1..], depth - 1)
        })
    }
    find(claims, key, 4)
}

/// An issuer or discovery URL: `https://…` (or `http://…`, which the service allows only when
/// the operator has said so), no whitespace, bounded.
pub fn url(field: &'static str, raw: &str) -> Result<String, FieldError> {
    let value = names::text(field, raw, 1, MAX_URL_CHARS)?;
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !value.contains(char::is_whitespace) => Ok(value),
        _ => Err(FieldError::new(
            field,
            format!("'{field}' must be an https:// URL."),
        )),
    }
}

/// The transformations of a provider: attribute names unique identifiers, expressions that
/// parse.
pub fn transformations(
    list: Vec<AttributeTransformation>,
) -> Result<Vec<AttributeTransformation>, FieldError> {
    const FIELD: &str = "attribute_transformations";
    if list.len() > MAX_TRANSFORMATIONS {
        return Err(FieldError::new(
            FIELD,
            format!("At most {MAX_TRANSFORMATIONS} attribute transformations."),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    list.into_iter()
        .map(|t| {
            let name = t.attribute.trim().to_owned();
            let valid = !name.is_empty()
                && name.len() <= MAX_ATTRIBUTE_CHARS
                && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !valid {
                return Err(FieldError::new(
                    FIELD,
                    format!(
                        "Attribute '{}' must be 1 to {MAX_ATTRIBUTE_CHARS} letters, digits, '_' \
                         or '.', starting with a letter or '_'.",
                        t.attribute
                    ),
                ));
            }
            if !seen.insert(name.clone()) {
                return Err(FieldError::new(
                    FIELD,
                    format!("Attribute '{name}' is defined twice."),
                ));
            }
            Expression::parse(&t.expression).map_err(|e| {
                FieldError::new(
                    FIELD,
                    format!("The expression of '{name}' is invalid: {e}."),
                )
            })?;
            Ok(AttributeTransformation {
                attribute: name,
                expression: t.expression,
            })
        })
        .collect()
}

/// A rule's matchers: at least one (a rule matching every token of an issuer would let any
/// workload that issuer serves act as the account), keys non-empty, values scalars.
pub fn matchers(
    raw: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, MatcherValue>, FieldError> {
    const FIELD: &str = "attribute_matchers";
    if raw.is_empty() {
        return Err(FieldError::new(
            FIELD,
            "'attribute_matchers' must name at least one claim or attribute (e.g. \"sub\").",
        ));
    }
    if raw.len() > MAX_MATCHERS {
        return Err(FieldError::new(
            FIELD,
            format!("At most {MAX_MATCHERS} attribute matchers."),
        ));
    }
    raw.iter()
        .map(|(key, value)| {
            let key = names::text(FIELD, key, 1, names::MAX_NAME_CHARS)?;
            let value = MatcherValue::from_json(value).ok_or_else(|| {
                FieldError::new(
                    FIELD,
                    format!("The matcher for '{key}' must be a string, a boolean or a number."),
                )
            })?;
            Ok((key, value))
        })
        .collect()
}

/// An uploaded key set: a JSON object with a `keys` array of at least one key, every one
/// usable (a public RSA, EC or OKP key with a `kid`), and small.
pub fn uploaded_jwks(jwks: &Value) -> Result<(), FieldError> {
    const FIELD: &str = "verification.jwks";
    let bad = |m: &str| Err(FieldError::new(FIELD, m.to_owned()));
    if jwks.to_string().len() > MAX_JWKS_BYTES {
        return bad("The key set is larger than 64 KiB.");
    }
    let Ok(set) = serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(jwks.clone()) else {
        return bad("The key set must be a JWKS: {\"keys\": [...]} of RSA, EC or OKP keys.");
    };
    if set.keys.is_empty() {
        return bad("The key set has no keys.");
    }
    for key in &set.keys {
        if key.common.key_id.as_deref().is_none_or(str::is_empty) {
            return bad("Every key needs a 'kid'.");
        }
        if matches!(
            key.algorithm,
            jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
        ) {
            return bad("Symmetric ('oct') keys are not accepted: tokens must be signed with an asymmetric key.");
        }
        if jsonwebtoken::DecodingKey::from_jwk(key).is_err() {
            return bad("A key of the set is not a valid public key.");
        }
    }
    // A private key has no place here (and must not be stored): refuse rather than strip.
    let private = jwks["keys"]
        .as_array()
        .is_some_and(|keys| keys.iter().any(|k| k.get("d").is_some()));
    if private {
        return bad("The key set holds a private key ('d'): upload only public keys.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(matchers: Value) -> FederationRule {
        let id = Id::parse("ab3def8hij2klm9opq5rst7uvw").unwrap();
        FederationRule {
            id: id.clone(),
            organization_id: id.clone(),
            provider_id: id.clone(),
            project_id: id.clone(),
            service_account_id: id,
            name: None,
            description: None,
            enabled: true,
            attribute_matchers: super::matchers(matchers.as_object().unwrap()).unwrap(),
            permissions: Permissions::ServiceAccountDefault,
            created_at: 0,
            updated_at: 0,
            deleted_at: None,
        }
    }

    #[test]
    fn rules_match_claims_paths_and_attributes_exactly() {
        let claims = json!({
            "sub": "system:serviceaccount:prod:builder",
            "kubernetes.io": {"namespace": "prod"},
            "run_attempt": 2,
            "ref_protected": true,
        });
        let attributes = BTreeMap::from([("ns".to_owned(), "prod".to_owned())]);
        let yes = [
            json!({"sub": "system:serviceaccount:prod:builder"}),
            json!({"kubernetes.io.namespace": "prod", "ref_protected": true}),
            json!({"run_attempt": 2}),
            json!({"run_attempt": 2.0}),
            json!({"ns": "prod"}),
        ];
        for m in yes {
            assert!(rule(m.clone()).matches(&claims, &attributes), "{m}");
        }
        let no = [
            json!({"sub": "system:serviceaccount:prod:*"}),
            json!({"sub": "system:serviceaccount:prod:builder", "ns": "dev"}),
            json!({"run_attempt": "2"}),
            json!({"ref_protected": "true"}),
            json!({"missing": "x"}),
            json!({"kubernetes.io": "prod"}),
        ];
        for m in no {
            assert!(!rule(m.clone()).matches(&claims, &attributes), "{m}");
        }
    }

    #[test]
    fn matchers_are_validated() {
        let bad = [
            json!({}),
            json!({"sub": ["a"]}),
            json!({"sub": null}),
            json!({"": "x"}),
        ];
        for m in bad {
            assert!(matchers(m.as_object().unwrap()).is_err(), "{m}");
        }
        let many: serde_json::Map<String, Value> = (0..=MAX_MATCHERS)
            .map(|i| (format!("c{i}"), json!("x")))
            .collect();
        assert!(matchers(&many).is_err());
    }

    #[test]
    fn transformations_are_validated_when_saved() {
        let t = |a: &str, e: &str| AttributeTransformation {
            attribute: a.into(),
            expression: e.into(),
        };
        assert!(transformations(vec![t("repo", "assertion.repository")]).is_ok());
        for bad in [
            vec![t("", "assertion.sub")],
            vec![t("1x", "assertion.sub")],
            vec![t("a b", "assertion.sub")],
            vec![t("repo", "assertion.")],
            vec![t("repo", "assertion.sub"), t("repo", "assertion.aud")],
        ] {
            assert!(transformations(bad.clone()).is_err(), "{bad:?}");
        }
        let provider = Provider {
            id: Id::parse("ab3def8hij2klm9opq5rst7uvw").unwrap(),
            organization_id: Id::parse("ab3def8hij2klm9opq5rst7uvw").unwrap(),
            name: "gh".into(),
            description: None,
            issuer: "https://token.actions.githubusercontent.com".into(),
            audience: "keyplane".into(),
            enabled: true,
            attribute_transformations: vec![
                t("repo", "lower(assertion.repository)"),
                t("absent", "assertion.nope"),
            ],
            verification: Verification::Discovery {
                discovery_url: None,
            },
            created_at: 0,
            updated_at: 0,
            deleted_at: None,
        };
        let attributes = provider.attributes(&json!({"repository": "Acme/API"}));
        assert_eq!(
            attributes,
            BTreeMap::from([("repo".to_owned(), "acme/api".to_owned())])
        );
        assert_eq!(
            provider
                .verification
                .discovery_url(&provider.issuer)
                .as_deref(),
            Some("https://token.actions.githubusercontent.com/.well-known/openid-configuration")
        );
    }

    #[test]
    fn json_forms_round_trip() {
        for v in [
            Verification::Discovery {
                discovery_url: None,
            },
            Verification::Discovery {
                discovery_url: Some("https://x/.well-known/openid-configuration".into()),
            },
            Verification::UploadedJwks {
                jwks: json!({"keys": []}),
            },
        ] {
            assert_eq!(Verification::from_json(&v.to_json()), Some(v));
        }
        for p in [
            Permissions::ServiceAccountDefault,
            Permissions::Restricted {
                scopes: vec!["api.model.read".into()],
            },
        ] {
            assert_eq!(Permissions::from_json(&p.to_json()), Some(p));
        }
        let m = super::matchers(
            json!({"sub": "a", "n": 1.5, "b": false})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(matchers_from_json(&matchers_to_json(&m)), Some(m));
        let t = vec![AttributeTransformation {
            attribute: "a".into(),
            expression: "assertion.sub".into(),
        }];
        assert_eq!(
            transformations_from_json(&transformations_to_json(&t)),
            Some(t)
        );
        assert_eq!(Verification::from_json(&json!({"type": "x"})), None);
        assert_eq!(Permissions::from_json(&json!({"type": "restricted"})), None);
    }

    #[test]
    fn urls_and_key_sets_are_validated() {
        assert!(url("issuer", "https://issuer.example").is_ok());
        assert!(url("issuer", "http://127.0.0.1:8080").is_ok());
        for bad in ["", "issuer.example", "ftp://x", "https://", "https://a b"] {
            assert!(url("issuer", bad).is_err(), "{bad}");
        }
        let ok = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k",
            "x": "UeXj21Mdi24wv786kOHEjeyfcTiZSXWxo38Er_1ESmg"}]});
        assert!(uploaded_jwks(&ok).is_ok());
        let mut private = ok.clone();
        private["keys"][0]["d"] = json!("AAAA");
        let no_kid = json!({"keys": [{"kty": "OKP", "crv": "Ed25519",
            "x": "UeXj21Mdi24wv786kOHEjeyfcTiZSXWxo38Er_1ESmg"}]});
        for bad in [
            json!({}),
            json!({"keys": []}),
            json!([1]),
            json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]}),
            private,
            no_kid,
        ] {
            assert!(uploaded_jwks(&bad).is_err(), "{bad}");
        }
    }
}
