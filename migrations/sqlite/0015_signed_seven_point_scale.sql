-- The -103..-101 / 100..103 scale is named for what it is, not for the
-- helpdesk that uses it: rows stored with its old token are renamed.
UPDATE ratings SET scale = 'signed_seven_point' WHERE scale = 'freshdesk';
