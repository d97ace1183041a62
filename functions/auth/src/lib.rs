//! `POST /auth/signup`, `POST /auth/signin` and `POST /auth/signout`.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use sluice_api::auth::{SignIn, SignUp, SignedUp, Token};
use sluice_api::limits::MAX_NAME_CHARS;
use sluice_shared::auth::{COOKIE_NAME, TokenIssuer, hash_password, verify_password};
use sluice_shared::aws::Clients;
use sluice_shared::config::{ConfigError, Env};
use sluice_shared::db::Db;
use sluice_shared::domain::{Email, Password, signin};
use sluice_shared::error::ErrorCode;
use sluice_shared::http::{json_body, json_response, refuse_cross_site, respond, unknown_route};
use sluice_shared::routes::{self, Endpoint};
use sluice_shared::signin_failures::SigninFailures;
use sluice_shared::{ApiError, config};
use uuid::Uuid;

pub struct Auth {
    pub db: Db,
    /// Failed sign-ins, which back off password guessing.
    pub signins: SigninFailures,
    pub issuer: TokenIssuer,
    /// `Secure` on the cookie; off only for http://localhost.
    pub cookie_secure: bool,
}

impl Auth {
    pub fn from_env(env: &Env, clients: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            db: Db::new(config::database_url(env)?),
            signins: SigninFailures::new(clients.dynamodb(), env.required("SESSIONS_TABLE")?),
            issuer: config::token_issuer(env)?,
            cookie_secure: env.parsed("COOKIE_SECURE", true)?,
        })
    }
}

pub async fn handle(auth: &Auth, req: Request) -> Result<Response<Body>, Error> {
    // A cross-site form could sign the victim's browser in as the attacker.
    if let Err(refused) = refuse_cross_site(&req) {
        return Ok(respond(Err(refused)));
    }
    let result = match routes::endpoint(&req) {
        Some(Endpoint::SignUp) => signup(auth, &req).await,
        Some(Endpoint::SignIn) => signin(auth, &req).await,
        Some(Endpoint::SignOut) => Ok(signout(auth)),
        _ => Err(unknown_route(&req)),
    };
    let retry_after = result.as_ref().err().and_then(|e| e.retry_after);
    let mut response = respond(result);
    if let Some(secs) = retry_after
        && let Ok(value) = secs.to_string().parse()
    {
        response.headers_mut().insert("retry-after", value);
    }
    Ok(response)
}

async fn signup(auth: &Auth, req: &Request) -> Result<Response<Body>, ApiError> {
    let input: SignUp = json_body(req)?;
    let email = Email::parse(&input.email).map_err(|m| ApiError::new(ErrorCode::InvalidEmail, m))?;
    let password = Password::parse(&input.password).map_err(|m| ApiError::new(ErrorCode::InvalidPassword, m))?;
    let name = input.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if let Some(n) = &name
        && n.chars().count() > MAX_NAME_CHARS
    {
        return Err(ApiError::new(
            ErrorCode::InvalidName,
            format!("name is {} characters; the maximum is {MAX_NAME_CHARS}", n.chars().count()),
        ));
    }
    let hash = hash_password(password.expose().to_string()).await?;
    let db = auth.db.client().await?;
    let user_id = Uuid::new_v4();
    let inserted = db
        .query_opt(
            "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)
             ON CONFLICT (email) DO NOTHING RETURNING id",
            &[&user_id, &email.as_str(), &name, &hash],
        )
        .await?;
    if inserted.is_none() {
        return Err(ApiError::new(ErrorCode::EmailTaken, format!("{} already has an account", email.as_str())));
    }
    Ok(json_response(201, &SignedUp { user_id, email: email.as_str().to_string() }))
}

async fn signin(auth: &Auth, req: &Request) -> Result<Response<Body>, ApiError> {
    let input: SignIn = json_body(req)?;
    let wrong = || ApiError::unauthorized("the email or password is wrong");
    let email = Email::parse(&input.email).map_err(|_| wrong())?;
    // Counted per email and address: someone failing on purpose from one
    // address slows down guesses from there, not the owner signing in from
    // another (API Gateway's throttles bound the rest).
    let counted_as = format!("{}|{}", email.as_str(), source_ip(req));
    // Before the hash: a guesser waits, and costs no Argon2 while it does.
    if let Some(last) = auth.signins.get(&counted_as).await? {
        let since = sluice_shared::auth::now_secs().saturating_sub(last.last_at);
        if let Some(wait) = signin::signin_wait(last.count, since) {
            return Err(ApiError::new(
                ErrorCode::TooManyAttempts,
                format!("{} failed sign-ins for this email; try again in {wait} s", last.count),
            )
            .with_retry_after(wait));
        }
    }
    let db = auth.db.client().await?;
    let row = db.query_opt("SELECT id, password_hash FROM users WHERE email = $1", &[&email.as_str()]).await?;
    let (user_id, stored) = match row {
        Some(row) => (Some(row.get::<_, Uuid>(0)), Some(row.get::<_, String>(1))),
        None => (None, None),
    };
    if !verify_password(input.password, stored).await || user_id.is_none() {
        auth.signins.count(&counted_as).await?;
        return Err(wrong());
    }
    let user_id = user_id.ok_or_else(wrong)?;
    // A count left behind only slows the next mistake: not worth refusing a sign-in for.
    if let Err(e) = auth.signins.clear(&counted_as).await {
        tracing::warn!(error = %e, "the failed sign-ins were not cleared");
    }
    let token = auth.issuer.issue(user_id, email.as_str())?;
    let ttl = auth.issuer.ttl_secs;
    let response = json_response(200, &Token::bearer(token.clone(), ttl));
    Ok(with_session_cookie(auth, response, &token, ttl))
}

/// The caller's address as API Gateway saw it.
fn source_ip(req: &Request) -> String {
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// Clears the sign-in cookie. It asks for no token, so a page whose cookie
/// has expired or was tampered with can still sign out; the token itself
/// stays valid until it expires (JWTs are not revoked).
fn signout(auth: &Auth) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    with_session_cookie(auth, response, "", 0)
}

/// The one shape of the session cookie: sign-in sets it, sign-out sets it
/// empty with `Max-Age=0`, which makes the browser drop it.
fn with_session_cookie(auth: &Auth, mut response: Response<Body>, token: &str, max_age: u64) -> Response<Body> {
    let secure = if auth.cookie_secure { "; Secure" } else { "" };
    let cookie = format!("{COOKIE_NAME}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    if let Ok(value) = cookie.parse() {
        response.headers_mut().insert("set-cookie", value);
    }
    response
}
