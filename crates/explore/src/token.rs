//! Replay tokens: printable, parseable, versioned.
//!
//! A token names everything needed to rebuild one execution: the profile,
//! knob overrides, the recorded choice list, and the scenario. Format:
//!
//! ```text
//! mmr1:<profile>:<knobs or ->:<choices or ->:<scenario path>
//! ```
//!
//! Choices are run-length encoded: `1x12.2.1x3` means twelve 1s, one 2,
//! three 1s. The scenario path comes last so it may contain any character.

use std::fmt;

const VERSION: &str = "mmr1";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub profile: String,
    pub knobs: Vec<(String, String)>,
    pub choices: Vec<u32>,
    pub scenario: String,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let knobs = if self.knobs.is_empty() {
            "-".to_string()
        } else {
            let pairs: Vec<String> = self.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.join(",")
        };
        write!(
            f,
            "{VERSION}:{}:{knobs}:{}:{}",
            self.profile,
            encode_choices(&self.choices),
            self.scenario
        )
    }
}

/// Run-length encodes a choice list (`-` when empty).
pub fn encode_choices(choices: &[u32]) -> String {
    if choices.is_empty() {
        return "-".into();
    }
    let mut runs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < choices.len() {
        let c = choices[i];
        let n = choices[i..].iter().take_while(|&&x| x == c).count();
        runs.push(if n == 1 {
            c.to_string()
        } else {
            format!("{c}x{n}")
        });
        i += n;
    }
    runs.join(".")
}

fn decode_choices(s: &str) -> Result<Vec<u32>, String> {
    if s == "-" {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for run in s.split('.') {
        let (value, count) = match run.split_once('x') {
            Some((v, n)) => (
                v,
                n.parse::<usize>()
                    .map_err(|_| format!("bad run length in '{run}'"))?,
            ),
            None => (run, 1),
        };
        let value: u32 = value.parse().map_err(|_| format!("bad choice '{run}'"))?;
        if count == 0 || out.len() + count > 10_000_000 {
            return Err(format!("implausible run length in '{run}'"));
        }
        out.extend(std::iter::repeat_n(value, count));
    }
    Ok(out)
}

impl std::str::FromStr for Token {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.trim().splitn(5, ':');
        let mut next = |what: &str| {
            parts
                .next()
                .ok_or_else(|| format!("token has no {what} field"))
        };
        let version = next("version")?;
        if version != VERSION {
            return Err(format!(
                "token version '{version}' is not {VERSION}; was it made by another mmrace?"
            ));
        }
        let profile = next("profile")?.to_string();
        let knobs = parse_knobs(next("knobs")?)?;
        let choices = decode_choices(next("choices")?)?;
        let scenario = next("scenario")?.to_string();
        if profile.is_empty() || scenario.is_empty() {
            return Err("token has an empty profile or scenario".into());
        }
        Ok(Token {
            profile,
            knobs,
            choices,
            scenario,
        })
    }
}

fn parse_knobs(s: &str) -> Result<Vec<(String, String)>, String> {
    if s == "-" {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("bad knob '{kv}' in token (expected name=value)")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Token {
            profile: "linux-6.1.159".into(),
            knobs: vec![("pmd_check".into(), "upstream65".into())],
            choices: vec![1, 1, 1, 2, 1, 2, 2, 0],
            scenario: "scenarios/seeds/001-a:b.mmr".into(),
        };
        let s = t.to_string();
        assert_eq!(
            s,
            "mmr1:linux-6.1.159:pmd_check=upstream65:1x3.2.1.2x2.0:scenarios/seeds/001-a:b.mmr"
        );
        assert_eq!(s.parse::<Token>().unwrap(), t);
    }

    #[test]
    fn rejects_garbage() {
        assert!("mmr2:a:-:-:x"
            .parse::<Token>()
            .unwrap_err()
            .contains("version"));
        assert!("mmr1:a:-:1xq:x".parse::<Token>().is_err());
        assert!("mmr1:a:k:1:x".parse::<Token>().is_err());
        assert!("mmr1:a:-:1".parse::<Token>().is_err());
        assert!("mmr1:a:-:1x0:x".parse::<Token>().is_err());
    }
}
