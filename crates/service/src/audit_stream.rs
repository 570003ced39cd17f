//! The audit events' copy as a JSON-lines stream for a SIEM (`audit.stream`).

use std::io::Write;
use std::sync::Mutex;

use techpass_store::AuditRecord;

/// Where each audit event is also written as one JSON line once stored (`audit.stream`): the
/// process's standard output, or a file opened for appending (a SIEM agent tails it).
#[derive(Debug)]
pub enum AuditStream {
    Stdout,
    File(Mutex<std::fs::File>),
}

impl AuditStream {
    /// `""`: none; `"stdout"`; otherwise a file path, created if missing and appended to.
    pub fn open(setting: &str) -> std::io::Result<Option<AuditStream>> {
        match setting.trim() {
            "" => Ok(None),
            "stdout" => Ok(Some(AuditStream::Stdout)),
            path => Ok(Some(AuditStream::File(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )))),
        }
    }

    /// One event as a line: the stored fields, `details` as the JSON object it holds.
    pub fn line(record: &AuditRecord) -> String {
        let details: serde_json::Value = serde_json::from_str(&record.details)
            .unwrap_or_else(|_| serde_json::Value::String(record.details.clone()));
        let mut line = serde_json::json!({
            "id": record.id,
            "at": record.at,
            "time": crate::dates::rfc3339(record.at),
            "event": record.event,
            "outcome": record.outcome,
            "reason": record.reason,
            "actor": record.actor,
            "subject": record.subject,
            "tenant": record.tenant,
            "upstream": record.upstream,
            "request_id": record.request_id,
            "details": details,
        })
        .to_string();
        line.push('\n');
        line
    }

    pub fn write(&self, record: &AuditRecord) {
        let line = AuditStream::line(record);
        let written = match self {
            AuditStream::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
            AuditStream::File(file) => match file.lock() {
                Ok(mut f) => f.write_all(line.as_bytes()),
                Err(_) => Ok(()),
            },
        };
        if let Err(e) = written {
            tracing::error!(error = %e, event = %record.event, "could not write the audit stream");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn events_stream_as_json_lines() {
        assert!(AuditStream::open("").unwrap().is_none());
        assert!(matches!(
            AuditStream::open("stdout").unwrap(),
            Some(AuditStream::Stdout)
        ));
        let path =
            std::env::temp_dir().join(format!("techpass-audit-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let stream = AuditStream::open(path.to_str().unwrap()).unwrap().unwrap();
        let record = AuditRecord {
            id: 7,
            at: 1_800_000_000,
            event: "signin".into(),
            outcome: "denied".into(),
            reason: Some("no_mfa".into()),
            details: r#"{"email":"a@b.gov.sg"}"#.into(),
            ..AuditRecord::default()
        };
        stream.write(&record);
        stream.write(&AuditRecord {
            id: 8,
            details: "not json\nwith a newline".into(),
            ..record.clone()
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            2,
            "one line per event, newlines escaped: {text}"
        );
        assert_eq!(lines[0]["id"], 7);
        assert_eq!(lines[0]["reason"], "no_mfa");
        assert_eq!(lines[0]["details"]["email"], "a@b.gov.sg");
        assert_eq!(lines[0]["time"], "2027-01-15T08:00:00Z");
        assert_eq!(lines[1]["details"], "not json\nwith a newline");
        std::fs::remove_file(&path).unwrap();
    }
}
