//! The agent half of the single-node cluster.

pub mod container;
pub mod docker;
pub mod fetcher;
pub mod health;
pub mod network;
pub mod runtime;
pub mod sandbox;

/// The bytes of a Mesos `Secret` of type VALUE (`{"type": "VALUE", "value": {"data":
/// base64}}`). REFERENCE secrets need a secret resolver, which m3s does not have.
pub(crate) fn secret_value(secret: &serde_json::Value) -> Result<Vec<u8>, SecretError> {
    use base64::Engine as _;
    let data = secret.pointer("/value/data").and_then(|d| d.as_str()).ok_or(SecretError::NotAValue)?;
    base64::engine::general_purpose::STANDARD.decode(data).map_err(|_| SecretError::NotBase64)
}

/// A secret m3s cannot read (its value is never part of the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("no secret set")]
    Missing,
    #[error("only secrets of type VALUE are supported (no secret resolver for REFERENCE)")]
    NotAValue,
    #[error("the secret's value is not base64")]
    NotBase64,
}

/// A command's environment: plain values, and SECRET variables resolved (kept
/// out of checkpoints' views and logs by the caller). A variable whose secret
/// cannot be read is left out, with a warning naming it.
pub(crate) fn command_env(command: &mesos::v1::CommandInfo) -> Vec<(String, String)> {
    use mesos::v1::VariableType;
    let mut env = Vec::new();
    for v in command.environment.iter().flat_map(|e| e.variables.iter()) {
        if v.kind == Some(VariableType::Secret) {
            match v.secret.as_ref().ok_or(SecretError::Missing).and_then(secret_value) {
                Ok(bytes) => env.push((v.name.clone(), String::from_utf8_lossy(&bytes).into_owned())),
                Err(e) => tracing::warn!(variable = %v.name, "environment variable left out: {e}"),
            }
        } else if let Some(value) = &v.value {
            env.push((v.name.clone(), value.clone()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use mesos::v1::{CommandInfo, Environment, EnvironmentVariable, VariableType};

    #[test]
    fn secret_variables_reach_the_environment_and_bad_ones_are_left_out() {
        let var = |name: &str, secret: serde_json::Value| EnvironmentVariable {
            name: name.into(),
            kind: Some(VariableType::Secret),
            value: None,
            secret: Some(secret),
        };
        let command = CommandInfo {
            environment: Some(Environment {
                variables: vec![
                    EnvironmentVariable { name: "PLAIN".into(), value: Some("p".into()), ..Default::default() },
                    var("TOKEN", serde_json::json!({"type": "VALUE", "value": {"data": "czNjcjN0"}})),
                    var("REF", serde_json::json!({"type": "REFERENCE", "reference": {"name": "x"}})),
                    var("BAD", serde_json::json!({"type": "VALUE", "value": {"data": "!!"}})),
                ],
            }),
            ..Default::default()
        };
        assert_eq!(
            super::command_env(&command),
            vec![("PLAIN".to_owned(), "p".to_owned()), ("TOKEN".to_owned(), "s3cr3t".to_owned())]
        );
    }
}
