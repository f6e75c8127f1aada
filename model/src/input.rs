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

/// Parses a calibration file: EZKL's `input_data` (one sample), and/or
/// `"calibration_samples": [S1, S2, …]`, each `S` shaped like `input_data`. Returns every
/// sample, `input_data` first.
pub fn parse_calibration_json(text: &str) -> Result<Vec<InputData>> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ModelError::Input(format!("calibration is not valid JSON: {e}")))?;
    let mut samples = Vec::new();
    if v.get("input_data").is_some() {
        samples.push(parse_input_json(text)?);
    }
    if let Some(list) = v.get("calibration_samples") {
        let list = list.as_array().ok_or_else(|| {
            ModelError::Input("\"calibration_samples\" must be a list of samples".into())
        })?;
        for (k, sample) in list.iter().enumerate() {
            let lists = sample.as_array().ok_or_else(|| {
                ModelError::Input(format!(
                    "calibration sample {k} must be a list of lists, like input_data"
                ))
            })?;
            let parsed = lists
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let mut out = Vec::new();
                    flatten(l, &mut out).map_err(|m| {
                        ModelError::Input(format!("calibration sample {k}, input {i}: {m}"))
                    })?;
                    Ok(out)
                })
                .collect::<Result<InputData>>()?;
            samples.push(parsed);
        }
    }
    if samples.is_empty() {
        return Err(ModelError::Input(
            "calibration needs \"input_data\" or \"calibration_samples\"".into(),
        ));
    }
    Ok(samples)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_samples_beside_or_instead_of_input_data() {
        let both = r#"{"input_data": [[1, 2]], "calibration_samples": [[[3, 4]], [[[5], [6]]]]}"#;
        assert_eq!(
            parse_calibration_json(both).unwrap(),
            vec![
                vec![vec![1.0, 2.0]],
                vec![vec![3.0, 4.0]],
                vec![vec![5.0, 6.0]]
            ]
        );
        let only = r#"{"calibration_samples": [[[3, 4]]]}"#;
        assert_eq!(
            parse_calibration_json(only).unwrap(),
            vec![vec![vec![3.0, 4.0]]]
        );
        for bad in [
            r#"{}"#,
            r#"{"calibration_samples": 3}"#,
            r#"{"calibration_samples": [3]}"#,
            r#"{"calibration_samples": [[["NaN"]]]}"#,
        ] {
            assert!(
                matches!(parse_calibration_json(bad), Err(ModelError::Input(_))),
                "{bad}"
            );
        }
    }
}
