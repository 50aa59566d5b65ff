//! The [`Catalog`]: an immutable snapshot of every resource at one store revision.
//!
//! Readers load an `Arc<Catalog>` once and see one consistent view; writers never
//! mutate a published catalog, they derive the next one with [`Catalog::apply`].

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::api::Authorizer;
use crate::arn::{FunctionArn, Qualifier};
use crate::function::PolicyStatement;
use crate::{Alias, Api, Deployment, Function, Integration, Route, Scope, Stage};

/// A persisted resource. The store keeps records by `(kind, key)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    /// A Lambda function.
    Function(Function),
    /// An HTTP API.
    Api(Api),
    /// A route of an API.
    Route(Route),
    /// An integration of an API.
    Integration(Integration),
    /// A stage of an API.
    Stage(Stage),
    /// A deployment of an API.
    Deployment(Deployment),
    /// A published version of a function.
    Version(Function),
    /// An alias of a function.
    Alias(Alias),
    /// An authorizer of an API.
    Authorizer(Authorizer),
}

/// The kinds of [`Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    /// [`Record::Function`].
    Function,
    /// [`Record::Api`].
    Api,
    /// [`Record::Route`].
    Route,
    /// [`Record::Integration`].
    Integration,
    /// [`Record::Stage`].
    Stage,
    /// [`Record::Deployment`].
    Deployment,
    /// [`Record::Version`].
    Version,
    /// [`Record::Alias`].
    Alias,
    /// [`Record::Authorizer`].
    Authorizer,
}

impl RecordKind {
    /// Stable name used as the storage discriminator.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Function => "function",
            RecordKind::Api => "api",
            RecordKind::Route => "route",
            RecordKind::Integration => "integration",
            RecordKind::Stage => "stage",
            RecordKind::Deployment => "deployment",
            RecordKind::Version => "version",
            RecordKind::Alias => "alias",
            RecordKind::Authorizer => "authorizer",
        }
    }
}

impl Record {
    /// The record's kind.
    pub fn kind(&self) -> RecordKind {
        match self {
            Record::Function(_) => RecordKind::Function,
            Record::Api(_) => RecordKind::Api,
            Record::Route(_) => RecordKind::Route,
            Record::Integration(_) => RecordKind::Integration,
            Record::Stage(_) => RecordKind::Stage,
            Record::Deployment(_) => RecordKind::Deployment,
            Record::Version(_) => RecordKind::Version,
            Record::Alias(_) => RecordKind::Alias,
            Record::Authorizer(_) => RecordKind::Authorizer,
        }
    }

    /// The record's key, unique within its kind.
    pub fn key(&self) -> String {
        match self {
            Record::Function(f) => f.arn(),
            Record::Api(a) => a.api_id.clone(),
            Record::Route(r) => child_key(&r.api_id, &r.route_id),
            Record::Integration(i) => child_key(&i.api_id, &i.integration_id),
            Record::Stage(s) => child_key(&s.api_id, &s.stage_name),
            Record::Deployment(d) => child_key(&d.api_id, &d.deployment_id),
            Record::Version(v) => v.version_arn(),
            Record::Alias(a) => a.arn(),
            Record::Authorizer(a) => child_key(&a.api_id, &a.authorizer_id),
        }
    }
}

/// Key of a resource that belongs to an API.
pub fn child_key(api_id: &str, id: &str) -> String {
    format!("{api_id}/{id}")
}

/// One change in a commit.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // records are moved once per commit; boxing buys nothing
pub enum Change {
    /// Insert or replace a record.
    Put(Record),
    /// Remove the record of this kind and key (a no-op when absent).
    Delete(RecordKind, String),
}

/// An API with everything that hangs off it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiBundle {
    /// The API itself.
    pub api: Api,
    /// Routes by route id (shared: a change to one route copies the map's pointers, not
    /// every route, which made each CreateRoute cost time in proportion to the API's size).
    pub routes: BTreeMap<String, Arc<Route>>,
    /// Integrations by integration id (shared, as routes).
    pub integrations: BTreeMap<String, Arc<Integration>>,
    /// Stages by stage name.
    pub stages: BTreeMap<String, Stage>,
    /// Deployments by id (shared: a deployment never changes once made).
    pub deployments: BTreeMap<String, Arc<Deployment>>,
    /// Authorizers by authorizer id.
    pub authorizers: BTreeMap<String, Authorizer>,
}

/// Every resource at one store revision. Cheap to clone: values are shared `Arc`s.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// The store revision this snapshot reflects.
    pub revision: u64,
    /// Functions by unqualified ARN (ordered, so listing a scope is a range scan).
    pub functions: BTreeMap<String, Arc<Function>>,
    /// APIs by id.
    pub apis: BTreeMap<String, Arc<ApiBundle>>,
    /// Published versions by qualified ARN (`...:function:{name}:{version}`).
    pub versions: BTreeMap<String, Arc<Function>>,
    /// Aliases by alias ARN (`...:function:{name}:{alias}`).
    pub aliases: BTreeMap<String, Arc<Alias>>,
}

/// What an invocation of a function reference runs.
#[derive(Debug, Clone)]
pub struct InvocationTarget<'a> {
    /// The version to run (`$LATEST` or a published one).
    pub function: &'a Arc<Function>,
    /// The ARN the caller used, as the function sees it (`invokedFunctionArn`).
    pub invoked_arn: String,
    /// The resource policy that governs the invocation: the alias's, the version's or
    /// the function's.
    pub policy: &'a [PolicyStatement],
}

impl Catalog {
    /// Builds the catalog from a full load of the store.
    pub fn from_records(revision: u64, records: impl IntoIterator<Item = Record>) -> Catalog {
        let mut records: Vec<Record> = records.into_iter().collect();
        // APIs first, so their children find them.
        records.sort_by_key(|r| r.kind() != crate::RecordKind::Api);
        Catalog::default().apply(revision, records.into_iter().map(Change::Put))
    }

    /// The next snapshot: this one with `changes` applied, at `revision`.
    pub fn apply(&self, revision: u64, changes: impl IntoIterator<Item = Change>) -> Catalog {
        let mut next = self.clone();
        next.revision = revision;
        for change in changes {
            match change {
                Change::Put(Record::Function(f)) => {
                    next.functions.insert(f.arn(), Arc::new(f));
                }
                Change::Put(Record::Api(a)) => match next.apis.get_mut(&a.api_id) {
                    Some(bundle) => Arc::make_mut(bundle).api = a,
                    None => {
                        next.apis.insert(
                            a.api_id.clone(),
                            Arc::new(ApiBundle {
                                api: a,
                                routes: BTreeMap::new(),
                                integrations: BTreeMap::new(),
                                stages: BTreeMap::new(),
                                deployments: BTreeMap::new(),
                                authorizers: BTreeMap::new(),
                            }),
                        );
                    }
                },
                Change::Put(Record::Route(r)) => {
                    if let Some(b) = next.apis.get_mut(&r.api_id) {
                        Arc::make_mut(b).routes.insert(r.route_id.clone(), Arc::new(r));
                    }
                }
                Change::Put(Record::Integration(i)) => {
                    if let Some(b) = next.apis.get_mut(&i.api_id) {
                        Arc::make_mut(b).integrations.insert(i.integration_id.clone(), Arc::new(i));
                    }
                }
                Change::Put(Record::Stage(s)) => {
                    if let Some(b) = next.apis.get_mut(&s.api_id) {
                        Arc::make_mut(b).stages.insert(s.stage_name.clone(), s);
                    }
                }
                Change::Put(Record::Deployment(d)) => {
                    if let Some(b) = next.apis.get_mut(&d.api_id) {
                        Arc::make_mut(b).deployments.insert(d.deployment_id.clone(), Arc::new(d));
                    }
                }
                Change::Put(Record::Authorizer(a)) => {
                    if let Some(b) = next.apis.get_mut(&a.api_id) {
                        Arc::make_mut(b).authorizers.insert(a.authorizer_id.clone(), a);
                    }
                }
                Change::Put(Record::Version(v)) => {
                    next.versions.insert(v.version_arn(), Arc::new(v));
                }
                Change::Put(Record::Alias(a)) => {
                    next.aliases.insert(a.arn(), Arc::new(a));
                }
                Change::Delete(RecordKind::Function, key) => {
                    next.functions.remove(&key);
                }
                Change::Delete(RecordKind::Version, key) => {
                    next.versions.remove(&key);
                }
                Change::Delete(RecordKind::Alias, key) => {
                    next.aliases.remove(&key);
                }
                Change::Delete(RecordKind::Api, key) => {
                    next.apis.remove(&key);
                }
                Change::Delete(kind, key) => {
                    let Some((api_id, id)) = key.split_once('/') else { continue };
                    if let Some(b) = next.apis.get_mut(api_id) {
                        let b = Arc::make_mut(b);
                        match kind {
                            RecordKind::Route => b.routes.remove(id).map(|_| ()),
                            RecordKind::Integration => b.integrations.remove(id).map(|_| ()),
                            RecordKind::Stage => b.stages.remove(id).map(|_| ()),
                            RecordKind::Deployment => b.deployments.remove(id).map(|_| ()),
                            RecordKind::Authorizer => b.authorizers.remove(id).map(|_| ()),
                            RecordKind::Function | RecordKind::Api | RecordKind::Version | RecordKind::Alias => None,
                        };
                    }
                }
            }
        }
        next
    }

    /// The function stored under this unqualified ARN.
    pub fn function(&self, arn: &str) -> Option<&Arc<Function>> {
        self.functions.get(arn)
    }

    /// Functions of one account and region, in name order.
    pub fn functions_in<'a>(&'a self, scope: &'a Scope) -> impl Iterator<Item = &'a Arc<Function>> + 'a {
        let prefix = format!("arn:aws:lambda:{}:{}:function:", scope.region, scope.account_id);
        self.functions.range(prefix.clone()..).take_while(move |(k, _)| k.starts_with(&prefix)).map(|(_, f)| f)
    }

    /// Published versions of the function with unqualified ARN `arn`, oldest first.
    pub fn versions_of<'a>(&'a self, arn: &str) -> Vec<&'a Arc<Function>> {
        let prefix = format!("{arn}:");
        let mut v: Vec<&Arc<Function>> =
            self.versions.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)).map(|(_, f)| f).collect();
        v.sort_by_key(|f| f.version.parse::<u64>().unwrap_or(u64::MAX));
        v
    }

    /// Aliases of the function with unqualified ARN `arn`, in name order.
    pub fn aliases_of<'a>(&'a self, arn: &str) -> impl Iterator<Item = &'a Arc<Alias>> + 'a {
        let prefix = format!("{arn}:");
        self.aliases.range(prefix.clone()..).take_while(move |(k, _)| k.starts_with(&prefix)).map(|(_, a)| a)
    }

    /// A version of a function: `$LATEST` or a published number.
    pub fn version(&self, arn: &str, version: &str) -> Option<&Arc<Function>> {
        if version == crate::function::LATEST {
            self.function(arn)
        } else {
            self.versions.get(&format!("{arn}:{version}"))
        }
    }

    /// Resolves what invoking `reference` runs. An alias with weighted routing picks
    /// its version by `roll`, a uniform random number in [0, 1).
    pub fn invocation_target(&self, reference: &FunctionArn, roll: f64) -> Option<InvocationTarget<'_>> {
        let arn = reference.unqualified();
        let latest = self.function(&arn)?;
        match &reference.qualifier {
            None => Some(InvocationTarget { function: latest, invoked_arn: arn, policy: &latest.policy }),
            Some(Qualifier::Latest) => Some(InvocationTarget {
                function: latest,
                invoked_arn: format!("{arn}:$LATEST"),
                policy: &latest.policy,
            }),
            Some(Qualifier::Named(q)) if q.bytes().all(|b| b.is_ascii_digit()) => {
                let v = self.versions.get(&format!("{arn}:{q}"))?;
                Some(InvocationTarget { function: v, invoked_arn: v.version_arn(), policy: &v.policy })
            }
            Some(Qualifier::Named(q)) => {
                let alias = self.aliases.get(&format!("{arn}:{q}"))?;
                let function = self.version(&arn, alias.pick_version(roll))?;
                Some(InvocationTarget { function, invoked_arn: alias.arn(), policy: &alias.policy })
            }
        }
    }

    /// An API, if it exists in `scope`.
    pub fn api_in(&self, scope: &Scope, api_id: &str) -> Option<&Arc<ApiBundle>> {
        self.apis.get(api_id).filter(|b| &b.api.scope == scope)
    }
}
