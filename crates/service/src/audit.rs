//! The audit log: one way to write an event, from every service (and its copy for a SIEM,
//! [`crate::audit_stream`]).

use techpass_store::AuditRecord;

use crate::ServiceContext;

/// Writes one audit event; a failure to write is logged, never shown to the person.
pub async fn audit(ctx: &ServiceContext, record: AuditRecord) {
    if let Err(e) = record_event(ctx, &record).await {
        tracing::error!(error = %e, event = %record.event, "could not write the audit log");
    }
}

/// Writes an event that is itself the record of an act (an access review's completion): its
/// failure is the act's, so the caller says so instead of claiming success.
pub async fn record_event(
    ctx: &ServiceContext,
    record: &AuditRecord,
) -> Result<i64, techpass_store::StoreError> {
    let id = ctx.store.append_audit(record).await?;
    if let Some(stream) = &ctx.audit_stream {
        stream.write(&AuditRecord {
            id,
            ..record.clone()
        });
    }
    Ok(id)
}
