-- Users, their files, and each file's chunks (S3 parts).
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    name          text,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE files (
    id            uuid PRIMARY KEY,
    owner_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    file_name     text NOT NULL,
    bucket        text NOT NULL,
    s3_key        text NOT NULL,
    size          bigint NOT NULL CHECK (size >= 0),
    etag          text,
    declared_type text NOT NULL,
    detected_type text,
    kind          text CHECK (kind IN ('IMAGE', 'VIDEO', 'AUDIO', 'DOCUMENT')),
    status        text NOT NULL CHECK (status IN ('UPLOADING', 'UPLOADED', 'FAILED')),
    reason        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_owner_created ON files (owner_id, created_at DESC, id DESC);

CREATE TABLE chunks (
    file_id     uuid NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    part_number integer NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
    size        bigint NOT NULL CHECK (size >= 0),
    etag        text,
    checksum    text,
    status      text NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED')),
    PRIMARY KEY (file_id, part_number)
);
