//! Parsing the ways AWS lets a caller name a function: a bare name, a partial ARN
//! (`123456789012:function:name`), a full ARN, each optionally qualified, and the
//! API Gateway integration URI that wraps a function ARN.

use crate::{Invalid, Scope};

/// A function reference resolved against the caller's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionArn {
    /// Account and region the function lives in.
    pub scope: Scope,
    /// The function's name.
    pub name: String,
    /// Version or alias, when the reference carried one.
    pub qualifier: Option<Qualifier>,
}

/// A version number, `$LATEST`, or an alias name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifier {
    /// `$LATEST`.
    Latest,
    /// A published version or an alias name.
    Named(String),
}

impl Qualifier {
    /// Parses a qualifier as it appears after the last `:`.
    pub fn parse(s: &str) -> Qualifier {
        if s == "$LATEST" {
            Qualifier::Latest
        } else {
            Qualifier::Named(s.to_string())
        }
    }
}

impl FunctionArn {
    /// Resolves a `FunctionName` path parameter as Lambda does: a name, a partial ARN or
    /// a full ARN; missing account and region come from the caller's scope.
    pub fn resolve(reference: &str, caller: &Scope) -> Result<FunctionArn, Invalid> {
        let parts: Vec<&str> = reference.split(':').collect();
        let (region, account, name, qualifier) = match parts.as_slice() {
            [name] => (None, None, *name, None),
            [name, q] => (None, None, *name, Some(*q)),
            [account, "function", name] => (None, Some(*account), *name, None),
            [account, "function", name, q] => (None, Some(*account), *name, Some(*q)),
            ["arn", _partition, "lambda", region, account, "function", name] => {
                (Some(*region), Some(*account), *name, None)
            }
            ["arn", _partition, "lambda", region, account, "function", name, q] => {
                (Some(*region), Some(*account), *name, Some(*q))
            }
            _ => return Err(invalid_reference(reference)),
        };
        crate::function::validate_function_name(name).map_err(|_| invalid_reference(reference))?;
        if let Some(a) = account {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid_reference(reference));
            }
        }
        let qualifier = match qualifier {
            Some("") => return Err(invalid_reference(reference)),
            q => q.map(Qualifier::parse),
        };
        Ok(FunctionArn {
            scope: Scope {
                account_id: account.unwrap_or(&caller.account_id).to_string(),
                region: region.unwrap_or(&caller.region).to_string(),
            },
            name: name.to_string(),
            qualifier,
        })
    }

    /// Parses an integration URI: a Lambda function ARN, or the
    /// `arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations` form.
    pub fn from_integration_uri(uri: &str) -> Option<FunctionArn> {
        let inner = match uri.split_once(":lambda:path/2015-03-31/functions/") {
            Some((prefix, rest)) if prefix.starts_with("arn:") => rest.strip_suffix("/invocations")?,
            _ => uri,
        };
        let parts: Vec<&str> = inner.split(':').collect();
        match parts.as_slice() {
            ["arn", _, "lambda", region, account, "function", name, rest @ ..] if rest.len() <= 1 => {
                Some(FunctionArn {
                    scope: Scope { account_id: (*account).to_string(), region: (*region).to_string() },
                    name: (*name).to_string(),
                    qualifier: rest.first().map(|q| Qualifier::parse(q)),
                })
            }
            _ => None,
        }
    }

    /// The unqualified ARN, the key functions are stored under.
    pub fn unqualified(&self) -> String {
        crate::function::function_arn(&self.scope, &self.name)
    }
}

fn invalid_reference(reference: &str) -> Invalid {
    Invalid(format!(
        "1 validation error detected: Value '{reference}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}}:)?(\\d{{12}}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Scope {
        Scope { account_id: "111122223333".into(), region: "us-east-1".into() }
    }

    #[track_caller]
    fn check(reference: &str, want: Option<(&str, &str, &str, Option<Qualifier>)>) {
        let got = FunctionArn::resolve(reference, &caller()).ok();
        let got = got.map(|a| (a.scope.account_id, a.scope.region, a.name, a.qualifier));
        let want = want.map(|(a, r, n, q)| (a.to_string(), r.to_string(), n.to_string(), q));
        assert_eq!(got, want, "{reference}");
    }

    #[test]
    fn references() {
        check("hello-api", Some(("111122223333", "us-east-1", "hello-api", None)));
        check("hello-api:$LATEST", Some(("111122223333", "us-east-1", "hello-api", Some(Qualifier::Latest))));
        check("444455556666:function:f", Some(("444455556666", "us-east-1", "f", None)));
        check(
            "arn:aws:lambda:eu-west-1:444455556666:function:f:prod",
            Some(("444455556666", "eu-west-1", "f", Some(Qualifier::Named("prod".into())))),
        );
        check("arn:aws:s3:::bucket", None);
        check("bad name", None);
        check("f:", None);
    }

    #[test]
    fn integration_uris() {
        let direct = FunctionArn::from_integration_uri("arn:aws:lambda:us-east-1:111122223333:function:hello-api")
            .expect("direct arn");
        assert_eq!(direct.name, "hello-api");
        let wrapped = FunctionArn::from_integration_uri(
            "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:111122223333:function:hello-api:live/invocations",
        )
        .expect("wrapped arn");
        assert_eq!(wrapped.name, "hello-api");
        assert_eq!(wrapped.qualifier, Some(Qualifier::Named("live".into())));
        assert!(FunctionArn::from_integration_uri("https://example.com").is_none());
    }
}
