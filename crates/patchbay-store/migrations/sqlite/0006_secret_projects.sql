-- The projects an organization secret is shared with (a JSON array of project ids). NULL keeps
-- it organization-wide: referenced by unscoped tokens only.
ALTER TABLE secrets ADD COLUMN projects TEXT;
