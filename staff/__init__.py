"""Staff in admin: roles (groups with exactly their permissions), money actions that need their own permission and a
reason, four-eyes approvals, the append-only audit trail, two-factor login and the login lockout.

Imports no other app of ours (only `common`): payments and onchain declare their actions (`staff.actions`) and
register them at start-up, as payments registers its PayoutListener with onchain."""
