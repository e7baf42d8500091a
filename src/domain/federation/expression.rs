//! The expression language of a provider's `attribute_transformations`: each names an
//! attribute and an expression that computes it from the subject token's claims, e.g.
//!
//! ```text
//! attribute: "repo_branch"
//! expression: assertion.repository + "@" + assertion.ref
//! attribute: "namespace"
//! expression: lower(assertion["kubernetes.io"].namespace)
//! ```
//!
//! Grammar (whitespace between tokens is ignored):
//!
//! ```text
//! expr  := term ("+" term)*
//! term  := STRING | path | FUNC "(" expr ")"
//! path  := "assertion" ("." IDENT | "[" STRING "]")*
//! FUNC  := lower | upper | trim
//! STRING:= a double-quoted string; \" \\ \n \t escapes
//! IDENT := [A-Za-z_][A-Za-z0-9_]*
//! ```
//!
//! Hand-written rather than a CEL crate on purpose: every expression is parsed and checked
//! when the provider is saved, so a bad one is a 400 then and never an error at exchange time;
//! evaluation is total (a claim that is missing or not a scalar makes the attribute absent,
//! and absent attributes match nothing) and its cost is bounded by the expression's size,
//! which is capped. A general CEL engine would accept expressions that fail only at run time
//! (type errors, missing fields) and would bring a large dependency for three functions.

use serde_json::Value;

/// Longest expression accepted, in bytes.
pub const MAX_EXPRESSION_BYTES: usize = 1024;
/// Deepest nesting of function calls accepted.
const MAX_DEPTH: usize = 8;

/// A parsed, checked expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expression(Vec<Term>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Term {
    Literal(String),
    /// Claim path from the token's payload (`assertion.a["b"]` is `["a", "b"]`).
    Path(Vec<String>),
    Call(Func, Expression),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Lower,
    Upper,
    Trim,
}

impl Func {
    fn named(name: &str) -> Option<Self> {
        match name {
            "lower" => Some(Func::Lower),
            "upper" => Some(Func::Upper),
            "trim" => Some(Func::Trim),
            _ => None,
        }
    }

    fn apply(self, s: String) -> String {
        match self {
            Func::Lower => s.to_lowercase(),
            Func::Upper => s.to_uppercase(),
            Func::Trim => s.trim().to_owned(),
        }
    }
}

/// Why an expression was refused, worded for the operator who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExpressionError(String);

fn err<T>(message: impl Into<String>) -> Result<T, ExpressionError> {
    Err(ExpressionError(message.into()))
}

impl Expression {
    pub fn parse(source: &str) -> Result<Self, ExpressionError> {
        if source.len() > MAX_EXPRESSION_BYTES {
            return err(format!(
                "an expression is at most {MAX_EXPRESSION_BYTES} bytes"
            ));
        }
        let mut p = Parser {
            src: source.as_bytes(),
            at: 0,
        };
        let expr = p.expr(0)?;
        p.skip_space();
        if p.at != p.src.len() {
            return err(format!("unexpected input at byte {}", p.at));
        }
        Ok(expr)
    }

    /// The attribute's value for these claims: a string, or `None` when a claim it reads is
    /// missing or not a string, number or boolean.
    pub fn evaluate(&self, claims: &Value) -> Option<String> {
        let mut out = String::new();
        for term in &self.0 {
            match term {
                Term::Literal(s) => out.push_str(s),
                Term::Path(path) => out.push_str(&scalar_text(lookup(claims, path)?)?),
                Term::Call(f, inner) => out.push_str(&f.apply(inner.evaluate(claims)?)),
            }
        }
        Some(out)
    }
}

/// The claim at `path` (object keys only).
pub fn lookup<'a, S: AsRef<str>>(claims: &'a Value, path: &[S]) -> Option<&'a Value> {
    path.iter()
        .try_fold(claims, |v, key| v.as_object()?.get(key.as_ref()))
}

/// A scalar claim as text: strings as they are, numbers and booleans as JSON writes them.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

struct Parser<'a> {
    src: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.src.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.src.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), ExpressionError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            return Ok(());
        }
        err(format!("expected '{}' at byte {}", byte as char, self.at))
    }

    fn expr(&mut self, depth: usize) -> Result<Expression, ExpressionError> {
        if depth > MAX_DEPTH {
            return err(format!("functions nest at most {MAX_DEPTH} deep"));
        }
        let mut terms = vec![self.term(depth)?];
        while self.peek() == Some(b'+') {
            self.at += 1;
            terms.push(self.term(depth)?);
        }
        Ok(Expression(terms))
    }

    fn term(&mut self, depth: usize) -> Result<Term, ExpressionError> {
        match self.peek() {
            Some(b'"') => Ok(Term::Literal(self.string()?)),
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => {
                let start = self.at;
                let name = self.ident();
                if name == "assertion" {
                    return self.path();
                }
                let Some(func) = Func::named(name) else {
                    return err(format!(
                        "unknown name '{name}' at byte {start}: expressions read claims as \
                         `assertion.<claim>` and call lower(), upper() or trim()"
                    ));
                };
                self.expect(b'(')?;
                let inner = self.expr(depth + 1)?;
                self.expect(b')')?;
                Ok(Term::Call(func, inner))
            }
            Some(_) => err(format!("unexpected character at byte {}", self.at)),
            None => err("the expression ends where a value was expected"),
        }
    }

    fn ident(&mut self) -> &str {
        let start = self.at;
        while self
            .src
            .get(self.at)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.at += 1;
        }
        // Only ASCII bytes were consumed, so this is a char boundary and valid UTF-8.
        std::str::from_utf8(&self.src[start..self.at]).unwrap_or_default()
    }

    fn path(&mut self) -> Result<Term, ExpressionError> {
        let mut path = Vec::new();
        loop {
            // No whitespace inside a path: `assertion . sub` is more likely a typo than intent.
            match self.src.get(self.at) {
                Some(b'.') => {
                    self.at += 1;
                    let start = self.at;
                    if !self
                        .src
                        .get(self.at)
                        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
                    {
                        return err(format!("expected a claim name at byte {start}"));
                    }
                    path.push(self.ident().to_owned());
                }
                Some(b'[') => {
                    self.at += 1;
                    let key = self.string()?;
                    self.expect(b']')?;
                    path.push(key);
                }
                _ => break,
            }
        }
        if path.is_empty() {
            return err("`assertion` alone is not a value: name a claim, e.g. assertion.sub");
        }
        Ok(Term::Path(path))
    }

    fn string(&mut self) -> Result<String, ExpressionError> {
        self.expect(b'"')?;
        let start = self.at;
        let mut out = Vec::new();
        loop {
            match self.src.get(self.at) {
                None => return err(format!("unterminated string from byte {}", start - 1)),
                Some(b'"') => {
                    self.at += 1;
                    break;
                }
                Some(b'\\') => {
                    let escaped = match self.src.get(self.at + 1) {
                        Some(b'"') => b'"',
                        Some(b'\\') => b'\\',
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        _ => return err(format!("unknown escape at byte {}", self.at)),
                    };
                    out.push(escaped);
                    self.at += 2;
                }
                Some(b) => {
                    out.push(*b);
                    self.at += 1;
                }
            }
        }
        // The source is a `str` and escapes are ASCII, so the bytes stay valid UTF-8.
        String::from_utf8(out).or_else(|_| err("a string is not valid UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(src: &str, claims: &Value) -> Option<String> {
        Expression::parse(src).unwrap().evaluate(claims)
    }

    #[test]
    fn paths_literals_concatenation_and_functions() {
        let claims = json!({
            "sub": "repo:acme/api:ref:refs/heads/main",
            "repository": "acme/api",
            "ref": "refs/heads/main",
            "run_attempt": 2,
            "kubernetes.io": {"namespace": "Prod", "serviceaccount": {"name": "builder"}},
            "flag": true,
        });
        assert_eq!(
            eval(r#"assertion.repository + "@" + assertion.ref"#, &claims).as_deref(),
            Some("acme/api@refs/heads/main")
        );
        assert_eq!(
            eval(r#"lower(assertion["kubernetes.io"].namespace)"#, &claims).as_deref(),
            Some("prod")
        );
        assert_eq!(
            eval(
                r#"assertion["kubernetes.io"]["serviceaccount"].name"#,
                &claims
            )
            .as_deref(),
            Some("builder")
        );
        assert_eq!(
            eval(r#"upper( trim(" a" + "b ") )"#, &claims).as_deref(),
            Some("AB")
        );
        assert_eq!(eval("assertion.run_attempt", &claims).as_deref(), Some("2"));
        assert_eq!(eval("assertion.flag", &claims).as_deref(), Some("true"));
        assert_eq!(
            eval(r#""say \"hi\"\\""#, &claims).as_deref(),
            Some("say \"hi\"\\")
        );
    }

    #[test]
    fn a_missing_or_non_scalar_claim_makes_the_attribute_absent() {
        let claims = json!({"a": {"b": 1}, "list": [1, 2], "nothing": null});
        for src in [
            "assertion.missing",
            "assertion.a",
            "assertion.list",
            "assertion.nothing",
            r#""x" + assertion.a.c"#,
            "lower(assertion.missing)",
            "assertion.a.b.c",
        ] {
            assert_eq!(eval(src, &claims), None, "{src}");
        }
    }

    #[test]
    fn bad_expressions_are_refused_when_parsed() {
        for src in [
            "",
            "   ",
            "assertion",
            "assertion.",
            "assertion . sub",
            "assertion.1x",
            r#"assertion["sub""#,
            r#""open"#,
            r#""bad \q escape""#,
            "assertion.sub +",
            "+ assertion.sub",
            "assertion.sub assertion.aud",
            "size(assertion.sub)",
            "lower assertion.sub",
            "lower(assertion.sub",
            "lower()",
            "request.sub",
            "assertion.sub == \"x\"",
            "1 + 2",
        ] {
            assert!(Expression::parse(src).is_err(), "{src:?} parsed");
        }
        let deep = "lower(".repeat(MAX_DEPTH + 1) + "assertion.sub" + &")".repeat(MAX_DEPTH + 1);
        assert!(Expression::parse(&deep).is_err());
        let long = format!("\"{}\"", "a".repeat(MAX_EXPRESSION_BYTES));
        assert!(Expression::parse(&long).is_err());
    }

    #[test]
    fn errors_name_what_is_allowed() {
        let e = Expression::parse("size(assertion.sub)").unwrap_err();
        assert!(e.to_string().contains("lower()"), "{e}");
    }
}
