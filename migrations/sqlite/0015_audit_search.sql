-- What the audit log is searched by (issue 16 item 2): the reference a refusal page shows (so
-- support can find the event from a screenshot) and the email of the person concerned (refused
-- sign-ins have no account to name). Indexes for the filters, each ending in (at, id) so a page
-- is read in the log's order with keyset paging.
ALTER TABLE audit_log ADD COLUMN reference TEXT;
ALTER TABLE audit_log ADD COLUMN subject_email TEXT;
CREATE INDEX audit_log_at_id ON audit_log (at, id);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant, at, id);
CREATE INDEX audit_log_event_at ON audit_log (event, at, id);
CREATE INDEX audit_log_outcome_at ON audit_log (outcome, at, id);
CREATE INDEX audit_log_actor_at ON audit_log (actor, at, id);
CREATE INDEX audit_log_reference ON audit_log (reference);
CREATE INDEX audit_log_subject_email ON audit_log (subject_email, at, id);
