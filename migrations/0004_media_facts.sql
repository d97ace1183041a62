-- What inspection read from the file's structure: an image's or video's
-- size in pixels, and an audio or video file's duration. NULL where the
-- format does not state it in the bytes inspect reads.
ALTER TABLE files
    ADD COLUMN width       integer CHECK (width > 0),
    ADD COLUMN height      integer CHECK (height > 0),
    ADD COLUMN duration_ms bigint CHECK (duration_ms >= 0);
