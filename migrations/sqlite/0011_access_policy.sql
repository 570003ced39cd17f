-- Per-tenant access (issue 13 items 3 and 4). An app's access policy replaces the assignment
-- flag: `assigned` (only assigned people and groups), `members` (the tenant's members: its
-- admins, people in its groups, vendors it invited) or `officers` (every registered officer,
-- who consents once before an app they have no relationship with receives their identity).
-- Apps that required assignment keep that rule; the others keep admitting every officer.
ALTER TABLE clients ADD COLUMN access_policy TEXT NOT NULL DEFAULT 'officers';
UPDATE clients SET access_policy = 'assigned' WHERE user_assignment_required <> 0;
ALTER TABLE clients DROP COLUMN user_assignment_required;

-- A person's consent to hand their identity to an app (one row per person and app; the scopes
-- consented to, space-separated). Revoking it on the account page deletes the row.
CREATE TABLE consents (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client ON consents (client_id);
