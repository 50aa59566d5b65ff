//! Lambda versions and aliases: PublishVersion, ListVersionsByFunction, and the alias
//! operations. A version is an immutable copy of `$LATEST`; an alias names a version
//! and may send a weighted share of invocations to a second one.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::StatusCode;
use portico_model::function::{self as fmodel, LATEST};
use portico_model::{Alias, Change, Function, FunctionArn, FunctionState, LastUpdateStatus, Record, RecordKind};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::lambda::{check_revision, configuration, find_latest, max_items, Resp};
use crate::{json, json_response, AwsError, Call, Control, Result, Service};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PublishIn {
    code_sha256: Option<String>,
    description: Option<String>,
    revision_id: Option<String>,
}

/// Whether `v` was published from `$LATEST` as it is now (same code and configuration).
fn same_as_latest(v: &Function, latest: &Function) -> bool {
    v.code == latest.code
        && v.runtime == latest.runtime
        && v.handler == latest.handler
        && v.timeout == latest.timeout
        && v.memory_size == latest.memory_size
        && v.environment == latest.environment
        && v.role == latest.role
        && v.architectures == latest.architectures
        && v.ephemeral_storage == latest.ephemeral_storage
}

/// PublishVersion: a new numbered copy of `$LATEST`, or the newest version when
/// nothing changed since it was published (as Lambda does).
pub(crate) async fn publish(c: &Control, call: &Call, name: &str) -> Result<Resp> {
    let input: PublishIn = json::parse(Service::Lambda, &call.body)?;
    let _w = c.write.lock().await;
    let latest = find_latest(c, call, name)?;
    check_revision(input.revision_id.as_deref(), &latest.revision_id)?;
    if let Some(sha) = input.code_sha256.as_deref() {
        if sha != latest.code.sha256_b64 {
            return Err(AwsError::invalid_parameter(format!(
                "CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({}). Please try again with the CodeSHA256 in $LATEST.",
                latest.code.sha256_b64
            )));
        }
    }
    if latest.state != FunctionState::Active || latest.last_update_status == LastUpdateStatus::InProgress {
        return Err(AwsError::resource_conflict(format!(
            "The operation cannot be performed at this time. An update is in progress for resource: {}",
            latest.arn()
        )));
    }
    let catalog = c.catalog();
    if let Some(newest) = catalog.versions_of(&latest.arn()).last() {
        if same_as_latest(newest, &latest) {
            return Ok(json_response(StatusCode::CREATED, &configuration(newest)));
        }
    }
    let number = latest.last_version + 1;
    let mut version = (*latest).clone();
    version.version = number.to_string();
    version.description = input.description.unwrap_or_else(|| latest.description.clone());
    version.revision_id = portico_model::ids::uuid();
    version.policy.clear();
    version.reserved_concurrency = None;
    version.last_version = 0;
    let mut next_latest = (*latest).clone();
    next_latest.last_version = number;
    let doc = configuration(&version);
    c.commit(vec![Change::Put(Record::Version(version)), Change::Put(Record::Function(next_latest))]).await?;
    Ok(json_response(StatusCode::CREATED, &doc))
}

/// `MaxItems` (1-10000, default 50) and `Marker` of a list operation.
fn paging(call: &Call) -> Result<(usize, usize)> {
    let max = max_items(call)?;
    let start = match call.query("Marker") {
        Some(m) => m.parse::<usize>().map_err(|_| AwsError::invalid_parameter(format!("Invalid marker: {m}")))?,
        None => 0,
    };
    Ok((max, start))
}

/// One page of `items` under `key`, with `NextMarker` when more follow.
fn page(call: &Call, key: &str, items: Vec<Value>) -> Result<Resp> {
    let (max, start) = paging(call)?;
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(start).take(max).collect();
    let mut doc = json!({ key: page });
    if start + max < total {
        doc["NextMarker"] = json!((start + max).to_string());
    }
    Ok(json_response(StatusCode::OK, &doc))
}

/// ListVersionsByFunction: `$LATEST`, then the published versions in order.
pub(crate) fn list_versions(c: &Control, call: &Call, name: &str) -> Result<Resp> {
    let latest = find_latest(c, call, name)?;
    let catalog = c.catalog();
    let mut items = vec![configuration(&latest)];
    items.extend(catalog.versions_of(&latest.arn()).into_iter().map(|v| configuration(v)));
    page(call, "Versions", items)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoutingIn {
    additional_version_weights: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasIn {
    name: Option<String>,
    function_version: Option<String>,
    description: Option<String>,
    routing_config: Option<RoutingIn>,
    revision_id: Option<String>,
}

fn alias_doc(a: &Alias) -> Value {
    let mut doc = json!({
        "AliasArn": a.arn(),
        "Name": a.name,
        "FunctionVersion": a.function_version,
        "Description": a.description,
        "RevisionId": a.revision_id,
    });
    if !a.additional_version_weights.is_empty() {
        doc["RoutingConfig"] = json!({ "AdditionalVersionWeights": a.additional_version_weights });
    }
    doc
}

/// Checks that `version` exists and that the weighted routing is one the alias may have.
fn check_target(c: &Control, latest: &Function, version: &str, weights: &BTreeMap<String, f64>) -> Result<()> {
    let catalog = c.catalog();
    if catalog.version(&latest.arn(), version).is_none() {
        return Err(AwsError::resource_not_found(format!("Function not found: {}:{version}", latest.arn())));
    }
    if weights.len() > 1 {
        return Err(AwsError::invalid_parameter(
            "Number of items in AdditionalVersionWeights cannot be greater than 1",
        ));
    }
    for (v, w) in weights {
        if !(0.0..=1.0).contains(w) {
            return Err(AwsError::validation(format!(
                "1 validation error detected: Value '{w}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0]"
            )));
        }
        if v == LATEST || version == LATEST {
            return Err(AwsError::invalid_parameter(
                "$LATEST is not supported for an alias pointing to more than 1 version",
            ));
        }
        if v == version {
            return Err(AwsError::invalid_parameter(
                "Invalid function version in RoutingConfig: it must differ from the alias's FunctionVersion",
            ));
        }
        if catalog.version(&latest.arn(), v).is_none() {
            return Err(AwsError::resource_not_found(format!("Function not found: {}:{v}", latest.arn())));
        }
    }
    Ok(())
}

/// CreateAlias.
pub(crate) async fn create_alias(c: &Control, call: &Call, name: &str) -> Result<Resp> {
    let input: AliasIn = json::parse(Service::Lambda, &call.body)?;
    let alias_name = input.name.unwrap_or_default();
    fmodel::validate_alias_name(&alias_name).map_err(|e| AwsError::validation(e.0))?;
    let version = input.function_version.unwrap_or_default();
    let weights = input.routing_config.and_then(|r| r.additional_version_weights).unwrap_or_default();
    let _w = c.write.lock().await;
    let latest = find_latest(c, call, name)?;
    let alias = Alias {
        scope: latest.scope.clone(),
        function_name: latest.name.clone(),
        name: alias_name,
        function_version: version.clone(),
        description: input.description.unwrap_or_default(),
        additional_version_weights: weights,
        revision_id: portico_model::ids::uuid(),
        policy: Vec::new(),
    };
    if c.catalog().aliases.contains_key(&alias.arn()) {
        return Err(AwsError::resource_conflict(format!("Alias already exists: {}", alias.arn())));
    }
    check_target(c, &latest, &version, &alias.additional_version_weights)?;
    let doc = alias_doc(&alias);
    c.commit(vec![Change::Put(Record::Alias(alias))]).await?;
    Ok(json_response(StatusCode::CREATED, &doc))
}

fn find_alias(c: &Control, latest: &Function, alias: &str) -> Result<Arc<Alias>> {
    let arn = format!("{}:{alias}", latest.arn());
    c.catalog()
        .aliases
        .get(&arn)
        .cloned()
        .ok_or_else(|| AwsError::resource_not_found(format!("Alias not found: {arn}")))
}

/// GetAlias.
pub(crate) fn get_alias(c: &Control, call: &Call, name: &str, alias: &str) -> Result<Resp> {
    let latest = find_latest(c, call, name)?;
    Ok(json_response(StatusCode::OK, &alias_doc(&*find_alias(c, &latest, alias)?)))
}

/// UpdateAlias.
pub(crate) async fn update_alias(c: &Control, call: &Call, name: &str, alias: &str) -> Result<Resp> {
    let input: AliasIn = json::parse(Service::Lambda, &call.body)?;
    let _w = c.write.lock().await;
    let latest = find_latest(c, call, name)?;
    let current = find_alias(c, &latest, alias)?;
    check_revision(input.revision_id.as_deref(), &current.revision_id)?;
    let mut next = (*current).clone();
    if let Some(v) = input.function_version {
        next.function_version = v;
    }
    if let Some(d) = input.description {
        next.description = d;
    }
    if let Some(r) = input.routing_config {
        next.additional_version_weights = r.additional_version_weights.unwrap_or_default();
    }
    check_target(c, &latest, &next.function_version, &next.additional_version_weights)?;
    next.revision_id = portico_model::ids::uuid();
    let doc = alias_doc(&next);
    c.commit(vec![Change::Put(Record::Alias(next))]).await?;
    Ok(json_response(StatusCode::OK, &doc))
}

/// DeleteAlias.
pub(crate) async fn delete_alias(c: &Control, call: &Call, name: &str, alias: &str) -> Result<Resp> {
    let _w = c.write.lock().await;
    let latest = find_latest(c, call, name)?;
    // Deleting an alias that does not exist succeeds, as on Lambda.
    let arn = format!("{}:{alias}", latest.arn());
    if c.catalog().aliases.contains_key(&arn) {
        c.commit(vec![Change::Delete(RecordKind::Alias, arn)]).await?;
    }
    Ok(crate::empty_response(StatusCode::NO_CONTENT))
}

/// ListAliases (optionally only those pointing at `FunctionVersion`).
pub(crate) fn list_aliases(c: &Control, call: &Call, name: &str) -> Result<Resp> {
    let latest = find_latest(c, call, name)?;
    let catalog = c.catalog();
    let only = call.query("FunctionVersion");
    let items = catalog
        .aliases_of(&latest.arn())
        .filter(|a| only.is_none_or(|v| a.function_version == v))
        .map(|a| alias_doc(a))
        .collect();
    page(call, "Aliases", items)
}

/// DeleteFunction with a `Qualifier`: deletes that version, unless an alias uses it.
pub(crate) async fn delete_version(c: &Control, call: &Call, name: &str, version: &str) -> Result<Resp> {
    let _w = c.write.lock().await;
    // The qualifier is the version to delete, not a reference to resolve.
    let arn = FunctionArn::resolve(name, &call.scope).map_err(|e| AwsError::validation(e.0))?;
    let unqualified = arn.unqualified();
    let latest = c
        .catalog()
        .function(&unqualified)
        .filter(|f| f.scope.account_id == call.scope.account_id)
        .cloned()
        .ok_or_else(|| AwsError::resource_not_found(format!("Function not found: {unqualified}")))?;
    if version == LATEST || !version.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AwsError::invalid_parameter(
            "Deletion of aliases or $LATEST by qualifier is not supported: delete the alias with DeleteAlias, or the function without a qualifier",
        ));
    }
    let catalog = c.catalog();
    let Some(v) = catalog.version(&latest.arn(), version) else {
        return Err(AwsError::resource_not_found(format!("Function not found: {}:{version}", latest.arn())));
    };
    if let Some(a) = catalog
        .aliases_of(&latest.arn())
        .find(|a| a.function_version == version || a.additional_version_weights.contains_key(version))
    {
        return Err(AwsError::resource_conflict(format!(
            "Unable to delete version because the following aliases reference it: [{}]",
            a.name
        )));
    }
    c.commit(vec![Change::Delete(RecordKind::Version, v.version_arn())]).await?;
    Ok(crate::empty_response(StatusCode::NO_CONTENT))
}

/// Every record of a function: `$LATEST`, its versions and its aliases (for DeleteFunction).
pub(crate) fn all_records(c: &Control, latest: &Function) -> Vec<Change> {
    let catalog = c.catalog();
    let mut changes = vec![Change::Delete(RecordKind::Function, latest.arn())];
    changes.extend(
        catalog.versions_of(&latest.arn()).into_iter().map(|v| Change::Delete(RecordKind::Version, v.version_arn())),
    );
    changes.extend(catalog.aliases_of(&latest.arn()).map(|a| Change::Delete(RecordKind::Alias, a.arn())));
    changes
}

/// The reference an invocation names, for resolving later (the async queue keeps it).
pub(crate) fn reference_arn(arn: &FunctionArn) -> String {
    match &arn.qualifier {
        None => arn.unqualified(),
        Some(portico_model::Qualifier::Latest) => format!("{}:$LATEST", arn.unqualified()),
        Some(portico_model::Qualifier::Named(q)) => format!("{}:{q}", arn.unqualified()),
    }
}
