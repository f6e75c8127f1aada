//! EZKL's input format: `{"input_data": [[floats...], ...]}`, one flat list per graph input.

use serde_json::Value;

use crate::error::{ModelError, Result};

/// Float inputs, one flat row-major list per graph input.
pub type InputData = Vec<Vec<f64>>;

/// Parses EZKL's `input.json`; nested lists are flattened row-major.
pub fn parse_input_json(text: &str) -> Result<InputData> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ModelError::Input(format!("input is not valid JSON: {e}")))?;
    let data = v
        .get("input_data")
        .ok_or_else(|| ModelError::Input("missing \"input_data\"".into()))?;
    let lists = data
        .as_array()
        .ok_or_else(|| ModelError::Input("\"input_data\" must be a list of lists".into()))?;
    lists
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut out = Vec::new();
            flatten(l, &mut out).map_err(|m| ModelError::Input(format!("input {i}: {m}")))?;
            Ok(out)
        })
        .collect()
}

fn flatten(v: &Value, out: &mut Vec<f64>) -> std::result::Result<(), String> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|x| flatten(x, out)),
        Value::Number(n) => {
            out.push(n.as_f64().ok_or("number out of f64 range")?);
            Ok(())
        }
        // JSON has no NaN; some writers emit it as a string.
        Value::String(s) => Err(format!(
            "expected a number, found string {s:?} (NaN and Inf are not accepted)"
        )),
        other => Err(format!("expected a number, found {other}")),
    }
}
