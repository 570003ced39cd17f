//! The audit log: one way to write an event, from every service.

use techpass_store::AuditRecord;

use crate::ServiceContext;

/// Writes one audit event; a failure to write is logged, never shown to the person.
pub async fn audit(ctx: &ServiceContext, record: AuditRecord) {
    if let Err(e) = ctx.store.append_audit(&record).await {
        tracing::error!(error = %e, event = %record.event, "could not write the audit log");
    }
}
