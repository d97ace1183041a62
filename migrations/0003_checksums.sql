-- The whole file's SHA-256 (base64) as its uploader declared it. A single
-- PUT signs it in, so S3 verified it; a multipart upload's parts are each
-- verified by their own SHA-256 (chunks.checksum).
ALTER TABLE files ADD COLUMN sha256 text;
