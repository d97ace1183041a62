-- Failed sign-ins now live in DynamoDB with a TTL (shared/src/signin_failures.rs),
-- so the auth function's count needs no cleanup of its own.
DROP TABLE IF EXISTS signin_failures;
