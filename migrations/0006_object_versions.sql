-- The S3 version inspect judged, in a versioned bucket: downloads and
-- deletes name it, so a PUT replayed to the same key never stands in for
-- the inspected bytes. NULL for files judged before versions were kept.
ALTER TABLE files ADD COLUMN IF NOT EXISTS version_id text;
