//! The layers of settings: the built-in defaults, the file, the environment; each key remembers
//! the layer that set it last.

use toml::{Table, Value};

use super::{ConfigError, ENV_PREFIX};

/// Which layer last set a key, so an error can say where to look.
pub(super) struct Layered {
    pub(super) table: Table,
    pub(super) origins: Vec<(String, String)>,
}

impl Layered {
    pub(super) fn origin_of(&self, key: &str) -> String {
        // An entry of a list (`email.mailboxes[1].address`) comes from where the list was set.
        let key = key.split('[').next().unwrap_or(key);
        self.origins
            .iter()
            .rev()
            .find(|(set, _)| key == set || key.starts_with(&format!("{set}.")))
            .map(|(_, origin)| origin.clone())
            .unwrap_or_else(|| "the built-in defaults".to_owned())
    }
}

pub(super) fn parse_toml(text: &str, origin: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|error| ConfigError::Syntax {
        origin: origin.to_owned(),
        message: error.to_string(),
    })
}

/// Lays `overlay` over `layered`, refusing keys the defaults do not know.
pub(super) fn merge(
    layered: &mut Layered,
    overlay: Table,
    prefix: &str,
    origin: &str,
) -> Result<(), ConfigError> {
    for (name, value) in overlay {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let slot = lookup_mut(&mut layered.table, &key).ok_or_else(|| ConfigError::Key {
            key: key.clone(),
            origin: origin.to_owned(),
            message: "unknown setting (see config/default.toml for every key)".into(),
        })?;
        match (slot, value) {
            (Value::Table(_), Value::Table(inner)) => merge(layered, inner, &key, origin)?,
            (slot, value) => {
                *slot = value;
                layered.origins.push((key, origin.to_owned()));
            }
        }
    }
    Ok(())
}

fn lookup_mut<'t>(table: &'t mut Table, dotted: &str) -> Option<&'t mut Value> {
    let mut parts = dotted.split('.');
    let mut current = table.get_mut(parts.next()?)?;
    for part in parts {
        current = current.as_table_mut()?.get_mut(part)?;
    }
    Some(current)
}

/// `HELPDESK_EMAIL__IMAP__PORT=143` sets `email.imap.port`; the value is read as the type the
/// default has, so a password of digits stays a string.
pub(super) fn apply_env(layered: &mut Layered, name: &str, raw: String) -> Result<(), ConfigError> {
    let key = name[ENV_PREFIX.len()..]
        .to_ascii_lowercase()
        .replace("__", ".");
    let origin = format!("environment variable {name}");
    let fail = |message: String| ConfigError::Key {
        key: key.clone(),
        origin: origin.clone(),
        message,
    };
    let slot = lookup_mut(&mut layered.table, &key)
        .ok_or_else(|| fail("unknown setting (see config/default.toml for every key)".into()))?;
    let value = match slot {
        Value::String(_) => Value::String(raw),
        Value::Integer(_) => Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| fail(format!("{raw:?} is not a whole number")))?,
        ),
        Value::Boolean(_) => Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err(fail(format!("{raw:?} is not true or false"))),
        }),
        Value::Table(_) => return Err(fail("is a section; set one of its keys".into())),
        other => {
            return Err(fail(format!(
                "cannot be set from the environment (a {})",
                other.type_str()
            )));
        }
    };
    *slot = value;
    layered.origins.push((key, origin));
    Ok(())
}
