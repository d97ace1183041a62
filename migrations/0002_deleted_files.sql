-- Files their owner deleted: the object is removed from S3 and the row kept
-- (hidden from every route) so the history and chunk rows stay consistent.
ALTER TABLE files ADD COLUMN deleted_at timestamptz;
CREATE INDEX files_owner_live ON files (owner_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
