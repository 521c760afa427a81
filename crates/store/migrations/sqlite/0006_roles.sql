-- Twofold schema, step 6: what a service account may do, and who relayed an
-- audited call. Identical for SQLite and PostgreSQL.
--
-- Accounts made before roles existed could do everything; they become
-- `admin` accounts with every permission over all users, so gateways and
-- separate portals keep working across the upgrade.
ALTER TABLE service_accounts ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'
    CHECK (role IN ('validate', 'portal', 'admin'));
ALTER TABLE service_accounts ADD COLUMN permissions TEXT NOT NULL DEFAULT
    'add_users,edit_users,change_phone,reset_pin,change_method,reset_security_questions,manage_oath_tokens,manage_devices,grant_bypass,enable_disable,unblock,delete_users,view_audit_log,manage_settings,manage_administrators,manage_service_accounts';
ALTER TABLE service_accounts ADD COLUMN scope_group TEXT;

-- A portal operation relayed by a remote portal is audited as the end user
-- (`actor`) via the portal's service account (`via`).
ALTER TABLE audit_events ADD COLUMN via TEXT;

-- Administrators who held every permission keep holding every permission,
-- including the two added with this step.
UPDATE portal_admins
   SET permissions = permissions || ',manage_administrators,manage_service_accounts'
 WHERE permissions = 'add_users,edit_users,change_phone,reset_pin,change_method,reset_security_questions,manage_oath_tokens,manage_devices,grant_bypass,enable_disable,unblock,delete_users,view_audit_log,manage_settings';
