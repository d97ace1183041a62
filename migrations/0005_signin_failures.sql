-- Failed sign-ins per email and source address (`email|address`), for
-- backing off password guessing
-- (shared/src/domain/signin.rs). A success deletes the row; rows whose last
-- failure is over a day old are deleted by the next failure.
CREATE TABLE signin_failures (
    email        text PRIMARY KEY,  -- email|address
    failures     integer NOT NULL CHECK (failures > 0),
    last_failure timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signin_failures_last ON signin_failures (last_failure);
