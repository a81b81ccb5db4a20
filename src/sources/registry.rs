//! The configured sources by name: what `POST /webhooks/{source}` looks up.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Source;
use crate::domain::SourceName;
use crate::settings::{ConfigError, Settings};

/// One `[[sources]]` entry, built.
#[derive(Clone)]
pub struct ConfiguredSource {
    pub name: SourceName,
    pub adapter: Arc<dyn Source>,
    /// The per-source threshold (`negative_at_or_below`), if set.
    pub negative_at_or_below: Option<i64>,
}

impl std::fmt::Debug for ConfiguredSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfiguredSource")
            .field("name", &self.name)
            .field("kind", &self.adapter.kind())
            .field("negative_at_or_below", &self.negative_at_or_below)
            .finish()
    }
}

impl ConfiguredSource {
    pub fn kind(&self) -> &'static str {
        self.adapter.kind()
    }
}

/// Every configured source.
#[derive(Debug, Clone, Default)]
pub struct SourceRegistry {
    sources: BTreeMap<String, ConfiguredSource>,
}

impl SourceRegistry {
    /// Builds every source of validated settings.
    pub fn from_settings(settings: &Settings) -> Result<SourceRegistry, ConfigError> {
        let mut sources = BTreeMap::new();
        let mut problems = Vec::new();
        for (i, s) in settings.sources.iter().enumerate() {
            let key = format!("sources[{i}]");
            let name = match SourceName::parse(&s.name) {
                Ok(name) => name,
                Err(e) => {
                    problems.push(crate::settings::ConfigProblem::new(
                        format!("{key}.name"),
                        e,
                    ));
                    continue;
                }
            };
            match super::build(&key, s) {
                Ok(adapter) => {
                    sources.insert(
                        s.name.clone(),
                        ConfiguredSource {
                            name,
                            adapter,
                            negative_at_or_below: s.negative_at_or_below,
                        },
                    );
                }
                Err(mut found) => problems.append(&mut found),
            }
        }
        if problems.is_empty() {
            Ok(SourceRegistry { sources })
        } else {
            Err(ConfigError { problems })
        }
    }

    pub fn get(&self, name: &str) -> Option<&ConfiguredSource> {
        self.sources.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConfiguredSource> {
        self.sources.values()
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}
