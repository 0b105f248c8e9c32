//! Accounts, auth and membership: registration rules, tokens and their revocation, rate
//! limits, invite codes, partners with expiring bindings, freezing, re-binding, guards.

use chrono::Duration;
use entity::member;
use futures_util::future::join_all;
use pushhand::config::Secret;
use pushhand::graphql::ids::Kind;
use pushhand::service::auth;
use pushhand::service::members::CliRole;
use serde_json::{Value, json};

use crate::fixtures::{gid, uuid_of};
use crate::helpers::{PASSWORD, TestApp, error_code, without_redis};

const ME: &str = "{ me { id displayName roles email phone inviteCode partnerLinkCode frozen
  upline { id displayName } bindingExpiresAt } }";

fn field(resp: &Value) -> Option<&str> {
    resp["errors"][0]["extensions"]["field"].as_str()
}

#[tokio::test]
async fn register_login_and_me() {
    let app = TestApp::spawn().await;
    let me = app.gql(ME, json!({})).await;
    assert_eq!(me["data"]["me"], Value::Null, "anonymous me is null");

    let resp = app
        .gql(
            "mutation($i: RegisterInput!) { register(input: $i) { token expiresAt member { displayName roles email phone inviteCode upline { id } } } }",
            json!({ "i": { "email": " Alice@Example.COM ", "phone": "138 1234 5678", "password": PASSWORD, "displayName": " Alice " } }),
        )
        .await;
    let reg = &resp["data"]["register"];
    assert_eq!(reg["member"]["email"], json!("alice@example.com"));
    assert_eq!(reg["member"]["phone"], json!("+8613812345678"));
    assert_eq!(reg["member"]["displayName"], json!("Alice"));
    assert_eq!(reg["member"]["roles"], json!(["BUYER"]));
    assert_eq!(
        reg["member"]["inviteCode"],
        Value::Null,
        "buyers have no invite code"
    );
    assert_eq!(reg["member"]["upline"], Value::Null);

    let token = reg["token"].as_str().expect("token");
    let me = app.data_as(token, ME, json!({})).await;
    assert_eq!(me["me"]["email"], json!("alice@example.com"));

    // Sign in by email (any case) or by phone (either form).
    app.login("ALICE@example.com", PASSWORD).await;
    let by_phone = app
        .gql("mutation { login(input: { phone: \"+8613812345678\", password: \"correct horse battery\" }) { member { displayName } } }", json!({}))
        .await;
    assert_eq!(
        by_phone["data"]["login"]["member"]["displayName"],
        json!("Alice")
    );

    for (email, password) in [
        ("alice@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
    ] {
        let resp = app
            .gql(
                "mutation($i: LoginInput!) { login(input: $i) { token } }",
                json!({ "i": { "email": email, "password": password } }),
            )
            .await;
        assert_eq!(error_code(&resp), Some("INVALID_CREDENTIALS"), "{resp}");
    }
}

#[tokio::test]
async fn registration_input_is_validated_field_by_field() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "password": PASSWORD, "displayName": "x" }),
            "email",
        ),
        (
            json!({ "phone": "12345", "password": PASSWORD, "displayName": "x" }),
            "phone",
        ),
        (
            json!({ "phone": "12812345678", "password": PASSWORD, "displayName": "x" }),
            "phone",
        ),
        (
            json!({ "email": "a@b.cn", "password": "short", "displayName": "x" }),
            "password",
        ),
        (json!({ "password": PASSWORD, "displayName": "x" }), "email"),
        (
            json!({ "email": "a@b.cn", "password": PASSWORD, "displayName": "   " }),
            "displayName",
        ),
        (
            json!({ "email": "a@b.cn", "password": PASSWORD, "displayName": "x", "inviteCode": "ABCDEFGH", "partnerLinkCode": "ABCDEFGHJK" }),
            "partnerLinkCode",
        ),
    ];
    for (input, expected) in cases {
        let resp = app
            .gql(
                "mutation($i: RegisterInput!) { register(input: $i) { token } }",
                json!({ "i": input }),
            )
            .await;
        assert_eq!(error_code(&resp), Some("VALIDATION"), "{input}: {resp}");
        assert_eq!(field(&resp), Some(expected), "{input}");
    }
    // E.164 numbers from elsewhere are fine.
    let resp = app
        .gql("mutation { register(input: { phone: \"+447911123456\", password: \"correct horse battery\", displayName: \"Bo\" }) { member { phone } } }", json!({}))
        .await;
    assert_eq!(
        resp["data"]["register"]["member"]["phone"],
        json!("+447911123456"),
        "{resp}"
    );
}

#[tokio::test]
async fn taken_emails_and_phones_are_refused_even_under_concurrency() {
    let app = TestApp::spawn().await;
    // Eight clients race to register the same email: the database decides, exactly once.
    let attempts = (0..8).map(|_| app.register("race@example.com", None, None));
    let results = join_all(attempts).await;
    let ok = results
        .iter()
        .filter(|r| r["data"]["register"]["token"].is_string())
        .count();
    let taken = results
        .iter()
        .filter(|r| error_code(r) == Some("EMAIL_TAKEN"))
        .count();
    assert_eq!((ok, taken), (1, 7), "{results:#?}");

    let resp = app.register("RACE@example.com", None, None).await;
    assert_eq!(
        error_code(&resp),
        Some("EMAIL_TAKEN"),
        "emails compare case-insensitively"
    );

    let reg = |phone: &'static str, email: &'static str| {
        app.gql(
            "mutation($i: RegisterInput!) { register(input: $i) { token } }",
            json!({ "i": { "email": email, "phone": phone, "password": PASSWORD, "displayName": "p" } }),
        )
    };
    assert!(reg("13900001111", "p1@example.com").await["data"]["register"]["token"].is_string());
    let resp = reg("+86 139 0000 1111", "p2@example.com").await;
    assert_eq!(error_code(&resp), Some("PHONE_TAKEN"), "{resp}");
}

#[tokio::test]
async fn invite_codes_make_permanently_bound_push_hands() {
    let app = TestApp::spawn().await;
    let (_, founder) = app.user("founder@example.com", CliRole::PushHand).await;
    let code = founder.invite_code.clone().expect("founders have a code");
    assert_eq!(code.len(), 8);

    // Codes are typed loosely: lower case and look-alikes are accepted.
    let typed = code.to_lowercase().replace('0', "o").replace('1', "l");
    let resp = app.register("child@example.com", Some(&typed), None).await;
    let child = &resp["data"]["register"]["member"];
    assert_eq!(child["roles"], json!(["PUSH_HAND"]), "{resp}");
    assert_eq!(
        child["upline"]["id"],
        json!(gid(Kind::MemberProfile, founder.id))
    );
    assert_eq!(
        child["bindingExpiresAt"],
        Value::Null,
        "invite bindings are permanent"
    );
    let child_code = child["inviteCode"].as_str().expect("push-hands get a code");
    assert_ne!(child_code, code);

    let resp = app
        .register("grandchild@example.com", Some(child_code), None)
        .await;
    assert!(resp["data"]["register"]["token"].is_string(), "{resp}");

    // Far in the future the invite binding still holds.
    app.clock.advance(Duration::days(3_650));
    let token = app.login("grandchild@example.com", PASSWORD).await;
    let me = app.data_as(&token, ME, json!({})).await;
    // The upline's profile: the same member as `child`, under the profile's own ID.
    let child_id = child["id"].as_str().expect("id");
    assert_eq!(
        me["me"]["upline"]["id"],
        json!(gid(Kind::MemberProfile, uuid_of(child_id)))
    );
}

#[tokio::test]
async fn concurrent_registrations_with_one_invite_code_all_bind() {
    let app = TestApp::spawn().await;
    let (token, founder) = app.user("founder@example.com", CliRole::PushHand).await;
    let code = founder.invite_code.clone().expect("code");

    let emails: Vec<String> = (0..12).map(|i| format!("m{i}@example.com")).collect();
    let results = join_all(emails.iter().map(|e| app.register(e, Some(&code), None))).await;
    for r in &results {
        assert!(r["data"]["register"]["token"].is_string(), "{r}");
    }
    let data = app
        .data_as(&token, "{ me { teamStats { totalMembers newThisMonth levels { level members } } team(first: 50) { edges { node { displayName } } } } }", json!({}))
        .await;
    assert_eq!(data["me"]["teamStats"]["totalMembers"], json!(12));
    assert_eq!(data["me"]["teamStats"]["newThisMonth"], json!(12));
    assert_eq!(
        data["me"]["teamStats"]["levels"][0],
        json!({ "level": 1, "members": 12 })
    );
    let mut names: Vec<String> = data["me"]["team"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter_map(|e| e["node"]["displayName"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    let mut expected = emails.clone();
    expected.sort();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn unknown_and_frozen_codes_are_refused() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (_, owner) = app.user("owner@example.com", CliRole::PushHand).await;
    let code = owner.invite_code.clone().expect("code");

    for bad in ["ZZZZZZZZ", "short", "ABCDEFGHU"] {
        let resp = app.register("x@example.com", Some(bad), None).await;
        assert_eq!(
            error_code(&resp),
            Some("INVALID_INVITE_CODE"),
            "{bad}: {resp}"
        );
    }
    let freeze = "mutation($id: ID!) { freezeMember(memberId: $id, reason: \"fraud review\") { frozen frozenReason } }";
    let data = app
        .data_as(&admin, freeze, json!({ "id": gid(Kind::Member, owner.id) }))
        .await;
    assert_eq!(
        data["freezeMember"],
        json!({ "frozen": true, "frozenReason": "fraud review" })
    );
    let resp = app.register("y@example.com", Some(&code), None).await;
    assert_eq!(
        error_code(&resp),
        Some("INVALID_INVITE_CODE"),
        "a frozen member's code is refused"
    );

    let unfreeze = "mutation($id: ID!) { unfreezeMember(memberId: $id) { frozen } }";
    app.data_as(
        &admin,
        unfreeze,
        json!({ "id": gid(Kind::Member, owner.id) }),
    )
    .await;
    let resp = app.register("y@example.com", Some(&code), None).await;
    assert!(resp["data"]["register"]["token"].is_string(), "{resp}");
}

#[tokio::test]
async fn repeated_failures_from_one_client_are_rate_limited() {
    let app = TestApp::spawn().await;
    app.user("victim@example.com", CliRole::PushHand).await;
    let attempt = |password: &'static str| {
        app.gql(
            "mutation($i: LoginInput!) { login(input: $i) { token } }",
            json!({ "i": { "email": "victim@example.com", "password": password } }),
        )
    };
    for _ in 0..5 {
        assert_eq!(
            error_code(&attempt("wrong password 1").await),
            Some("INVALID_CREDENTIALS")
        );
    }
    assert_eq!(
        error_code(&attempt("wrong password 1").await),
        Some("RATE_LIMITED")
    );
    // Blocked means blocked: the right password does not get through either. The limit is
    // the account's: the client's other attempts count on their own (tests/api/credentials.rs).
    assert_eq!(error_code(&attempt(PASSWORD).await), Some("RATE_LIMITED"));
    let resp = app
        .register("guess@example.com", Some("ZZZZZZZZ"), None)
        .await;
    assert_eq!(error_code(&resp), Some("INVALID_INVITE_CODE"));
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let (good, m) = app.user("member@example.com", CliRole::PushHand).await;
    assert!(app.data_as(&good, ME, json!({})).await["me"]["id"].is_string());

    let now = app.clock_now();
    let other_secret = Secret::new("another-secret-another-secret-012345");
    let forged = auth::issue_token(&other_secret, &m, now, Duration::hours(1))
        .map_err(anyhow::Error::from)
        .expect("token");
    let expired = auth::issue_token(
        &app.state.jwt_secret,
        &m,
        now - Duration::days(2),
        Duration::hours(1),
    )
    .map_err(anyhow::Error::from)
    .expect("token");
    // alg: none, with the same claims and no signature.
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = json!({ "sub": m.id.to_string(), "exp": (now + Duration::hours(1)).timestamp(),
                         "iat": now.timestamp(), "iss": auth::ISSUER, "aud": auth::AUDIENCE, "ver": 0 });
    let none = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        b64(claims.clone())
    );
    // Properly signed but without an audience.
    let mut no_aud = claims.clone();
    no_aud.as_object_mut().expect("object").remove("aud");
    let no_aud = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &no_aud,
        &jsonwebtoken::EncodingKey::from_secret(app.state.jwt_secret.expose().as_bytes()),
    )
    .expect("encode");

    for (name, token) in [
        ("forged", forged),
        ("expired", expired),
        ("alg none", none),
        ("no aud", no_aud),
        ("garbage", "x.y.z".into()),
    ] {
        let resp = app.gql_as(&token, ME, json!({})).await;
        assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"), "{name}: {resp}");
    }
}

#[tokio::test]
async fn password_change_and_freeze_revoke_older_tokens() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (old, m) = app.user("member@example.com", CliRole::PushHand).await;

    let change = "mutation($o: String!, $n: String!) { changePassword(oldPassword: $o, newPassword: $n) { token } }";
    let resp = app
        .gql_as(
            &old,
            change,
            json!({ "o": "not my password", "n": "a brand new password" }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("INVALID_CREDENTIALS"));
    let data = app
        .data_as(
            &old,
            change,
            json!({ "o": PASSWORD, "n": "a brand new password" }),
        )
        .await;
    let new = data["changePassword"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(
        error_code(&app.gql_as(&old, ME, json!({})).await),
        Some("UNAUTHENTICATED")
    );
    assert!(app.data_as(&new, ME, json!({})).await["me"]["id"].is_string());

    let freeze =
        "mutation($id: ID!) { freezeMember(memberId: $id, reason: \"chargebacks\") { frozen } }";
    app.data_as(&admin, freeze, json!({ "id": gid(Kind::Member, m.id) }))
        .await;
    assert_eq!(
        error_code(&app.gql_as(&new, ME, json!({})).await),
        Some("UNAUTHENTICATED")
    );
    // A frozen member may still sign in (and sees that it is frozen).
    let again = app
        .login("member@example.com", "a brand new password")
        .await;
    assert_eq!(
        app.data_as(&again, ME, json!({})).await["me"]["frozen"],
        json!(true)
    );
}

#[tokio::test]
async fn admin_actions_are_guarded() {
    let app = TestApp::spawn().await;
    let (pusher, m) = app.user("pusher@example.com", CliRole::PushHand).await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let id = json!({ "id": gid(Kind::Member, m.id) });
    let mutations = [
        "mutation($id: ID!) { approvePartner(memberId: $id) { id } }",
        "mutation($id: ID!) { rejectPartner(memberId: $id) { id } }",
        "mutation($id: ID!) { freezeMember(memberId: $id, reason: \"x\") { id } }",
        "mutation($id: ID!) { unfreezeMember(memberId: $id) { id } }",
        "mutation($id: ID!) { rebindMember(memberId: $id, uplineId: $id) { id } }",
    ];
    for q in mutations {
        assert_eq!(
            error_code(&app.gql(q, id.clone()).await),
            Some("UNAUTHENTICATED"),
            "{q}"
        );
        assert_eq!(
            error_code(&app.gql_as(&pusher, q, id.clone()).await),
            Some("FORBIDDEN"),
            "{q}"
        );
        assert_eq!(
            error_code(&app.gql_as(&curator, q, id.clone()).await),
            Some("FORBIDDEN"),
            "{q}"
        );
    }
    assert_eq!(
        error_code(
            &app.gql("mutation { applyForPartner { id } }", json!({}))
                .await
        ),
        Some("UNAUTHENTICATED")
    );
    assert_eq!(
        error_code(&app.gql("mutation { expireBindings }", json!({})).await),
        Some("UNAUTHENTICATED")
    );
}

const PARTNER_FLOW: &str = "mutation($id: ID!) { approvePartner(memberId: $id) { roles partnerLinkCode partnerApplication } }";

/// A push-hand promoted to partner through the API; returns its token, row and link code.
async fn partner(app: &TestApp, admin: &str, email: &str) -> (String, member::Model, String) {
    let (token, m) = app.user(email, CliRole::PushHand).await;
    let applied = app
        .data_as(
            &token,
            "mutation { applyForPartner { partnerApplication } }",
            json!({}),
        )
        .await;
    assert_eq!(
        applied["applyForPartner"]["partnerApplication"],
        json!("PENDING")
    );
    let resp = app
        .gql_as(&token, "mutation { applyForPartner { id } }", json!({}))
        .await;
    assert_eq!(error_code(&resp), Some("APPLICATION_PENDING"));
    let approved = app
        .data_as(
            admin,
            PARTNER_FLOW,
            json!({ "id": gid(Kind::Member, m.id) }),
        )
        .await;
    assert_eq!(
        approved["approvePartner"]["roles"],
        json!(["PUSH_HAND", "PARTNER"])
    );
    assert_eq!(
        approved["approvePartner"]["partnerApplication"],
        json!("APPROVED")
    );
    let link = approved["approvePartner"]["partnerLinkCode"]
        .as_str()
        .expect("link")
        .to_owned();
    (token, m, link)
}

#[tokio::test]
async fn partner_links_bind_for_the_binding_period_then_lapse() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (p1_token, p1, link1) = partner(&app, &admin, "p1@example.com").await;
    let (_, p2, link2) = partner(&app, &admin, "p2@example.com").await;

    let resp = app.register("buyer@example.com", None, Some(&link1)).await;
    let buyer = &resp["data"]["register"]["member"];
    assert_eq!(
        buyer["roles"],
        json!(["BUYER"]),
        "a partner link does not make a push-hand: {resp}"
    );
    assert_eq!(
        buyer["upline"]["id"],
        json!(gid(Kind::MemberProfile, p1.id))
    );
    let expires: chrono::DateTime<chrono::Utc> = buyer["bindingExpiresAt"]
        .as_str()
        .expect("expiry")
        .parse()
        .expect("RFC 3339");
    let expected = app.clock_now() + Duration::days(365);
    assert!(
        (expires - expected).num_seconds().abs() < 60,
        "{expires} vs {expected}"
    );
    let buyer_token = app.login("buyer@example.com", PASSWORD).await;

    // While bound, following another partner's link is refused.
    let follow =
        "mutation($c: String!) { acceptPartnerLink(code: $c) { upline { id } bindingExpiresAt } }";
    let resp = app
        .gql_as(&buyer_token, follow, json!({ "c": link2 }))
        .await;
    assert_eq!(error_code(&resp), Some("ALREADY_BOUND"), "{resp}");
    let stats = "{ me { teamStats { totalMembers } } }";
    assert_eq!(
        app.data_as(&p1_token, stats, json!({})).await["me"]["teamStats"]["totalMembers"],
        json!(1)
    );

    // A year and a day later the binding has lapsed, even before the expiry job runs.
    app.clock.advance(Duration::days(366));
    let me = app.data_as(&buyer_token, ME, json!({})).await;
    assert_eq!(me["me"]["upline"], Value::Null);
    assert_eq!(me["me"]["bindingExpiresAt"], Value::Null);
    let ended = app
        .data_as(&admin, "mutation { expireBindings }", json!({}))
        .await;
    assert_eq!(ended["expireBindings"], json!(1));
    let again = app
        .data_as(&admin, "mutation { expireBindings }", json!({}))
        .await;
    assert_eq!(again["expireBindings"], json!(0), "the job is idempotent");
    assert_eq!(
        app.data_as(&p1_token, stats, json!({})).await["me"]["teamStats"]["totalMembers"],
        json!(0)
    );

    // Now another partner's link binds the member anew; the history shows both.
    let data = app
        .data_as(&buyer_token, follow, json!({ "c": link2 }))
        .await;
    assert_eq!(
        data["acceptPartnerLink"]["upline"]["id"],
        json!(gid(Kind::MemberProfile, p2.id))
    );
    let history = app
        .data_as(
            &buyer_token,
            "{ me { bindings { kind upline { displayName } endedAt endReason expiresAt } } }",
            json!({}),
        )
        .await;
    let bindings = history["me"]["bindings"].as_array().expect("list");
    assert_eq!(bindings.len(), 2);
    assert_eq!(bindings[0]["upline"]["displayName"], json!("p2"));
    assert_eq!(bindings[0]["endReason"], Value::Null);
    assert_eq!(bindings[1]["kind"], json!("PARTNER_LINK"));
    assert_eq!(bindings[1]["endReason"], json!("EXPIRED"));
    assert_eq!(
        bindings[1]["endedAt"], bindings[1]["expiresAt"],
        "it ended when it expired"
    );

    // Buyers cannot apply; unknown links are refused.
    let resp = app
        .gql_as(
            &buyer_token,
            "mutation { applyForPartner { id } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));
    let resp = app
        .register("z@example.com", None, Some("ZZZZZZZZZZ"))
        .await;
    assert_eq!(error_code(&resp), Some("INVALID_PARTNER_LINK"));
}

#[tokio::test]
async fn rejected_applications_and_approvals_without_one() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (token, m) = app.user("p@example.com", CliRole::PushHand).await;
    let id = json!({ "id": gid(Kind::Member, m.id) });
    let resp = app.gql_as(&admin, PARTNER_FLOW, id.clone()).await;
    assert_eq!(error_code(&resp), Some("NO_PENDING_APPLICATION"));
    app.data_as(&token, "mutation { applyForPartner { id } }", json!({}))
        .await;
    let data = app
        .data_as(&admin, "mutation($id: ID!) { rejectPartner(memberId: $id) { roles partnerApplication partnerLinkCode } }", id)
        .await;
    assert_eq!(
        data["rejectPartner"],
        json!({ "roles": ["PUSH_HAND"], "partnerApplication": "REJECTED", "partnerLinkCode": null })
    );
}

const REBIND: &str =
    "mutation($m: ID!, $u: ID!) { rebindMember(memberId: $m, uplineId: $u) { upline { id } } }";

#[tokio::test]
async fn rebinding_keeps_the_tree_acyclic_and_the_history_complete() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (a_token, a) = app.user("a@example.com", CliRole::PushHand).await;
    let b = app
        .register("b@example.com", a.invite_code.as_deref(), None)
        .await;
    let b_id = b["data"]["register"]["member"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let b_code = b["data"]["register"]["member"]["inviteCode"]
        .as_str()
        .expect("code")
        .to_owned();
    let c = app.register("c@example.com", Some(&b_code), None).await;
    let c_id = c["data"]["register"]["member"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let a_id = gid(Kind::Member, a.id);

    // a → b → c: a cannot go under c (its own grandchild), nor under itself.
    for (m, u) in [(&a_id, &c_id), (&a_id, &b_id), (&b_id, &b_id)] {
        let resp = app.gql_as(&admin, REBIND, json!({ "m": m, "u": u })).await;
        assert_eq!(
            error_code(&resp),
            Some("BINDING_CYCLE"),
            "{m} under {u}: {resp}"
        );
    }
    let stats = "{ me { teamStats { levels { level members } } } }";
    let before = app.data_as(&a_token, stats, json!({})).await;
    assert_eq!(
        before["me"]["teamStats"]["levels"][1],
        json!({ "level": 2, "members": 1 })
    );

    // c moves up directly under a (named by a's profile ID: member arguments take either).
    let a_profile = gid(Kind::MemberProfile, a.id);
    let data = app
        .data_as(&admin, REBIND, json!({ "m": c_id, "u": a_profile }))
        .await;
    assert_eq!(data["rebindMember"]["upline"]["id"], json!(a_profile));
    let after = app.data_as(&a_token, stats, json!({})).await;
    assert_eq!(
        after["me"]["teamStats"]["levels"][0],
        json!({ "level": 1, "members": 2 })
    );
    assert_eq!(
        after["me"]["teamStats"]["levels"][1],
        json!({ "level": 2, "members": 0 })
    );

    let c_token = app.login("c@example.com", PASSWORD).await;
    let history = app
        .data_as(
            &c_token,
            "{ me { bindings { kind endReason } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        history["me"]["bindings"],
        json!([{ "kind": "ADMIN_REBIND", "endReason": null }, { "kind": "INVITE_CODE", "endReason": "REBOUND" }])
    );
}

#[tokio::test]
async fn concurrent_opposite_rebinds_cannot_make_a_cycle() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    for round in 0..3 {
        let (_, x) = app
            .user(&format!("x{round}@example.com"), CliRole::PushHand)
            .await;
        let (_, y) = app
            .user(&format!("y{round}@example.com"), CliRole::PushHand)
            .await;
        let (x, y) = (gid(Kind::Member, x.id), gid(Kind::Member, y.id));
        let (r1, r2) = tokio::join!(
            app.gql_as(&admin, REBIND, json!({ "m": x, "u": y })),
            app.gql_as(&admin, REBIND, json!({ "m": y, "u": x })),
        );
        let ok = [&r1, &r2]
            .iter()
            .filter(|r| r["data"]["rebindMember"].is_object())
            .count();
        assert_eq!(
            ok, 1,
            "exactly one of two opposite re-bindings wins: {r1} {r2}"
        );
        let loser = if r1["data"]["rebindMember"].is_object() {
            &r2
        } else {
            &r1
        };
        assert_eq!(error_code(loser), Some("BINDING_CYCLE"), "{loser}");
    }
}

#[tokio::test]
async fn create_user_cli_refuses_a_taken_email() {
    let dir = tempfile::tempdir().expect("dir");
    let db = crate::helpers::fresh_database_url(&dir).await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pushhand"))
            .args(["--database-url", &db, "--data-dir"])
            .arg(dir.path())
            .args([
                "create-user",
                "--email",
                "boss@example.com",
                "--password",
                PASSWORD,
                "--role",
                "ADMIN",
            ])
            .output()
            .expect("runs")
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = run();
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("already registered"));
}

#[tokio::test]
async fn members_are_private_through_node() {
    let app = TestApp::spawn().await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (a_token, a) = app.user("a@example.com", CliRole::PushHand).await;
    let b = app
        .register("b@example.com", a.invite_code.as_deref(), None)
        .await;
    let b_id = b["data"]["register"]["member"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let b_token = app.login("b@example.com", PASSWORD).await;
    let (stranger, _) = app.user("s@example.com", CliRole::PushHand).await;
    let a_id = gid(Kind::Member, a.id);
    let a_profile = gid(Kind::MemberProfile, a.id);
    let b_profile = gid(Kind::MemberProfile, uuid_of(&b_id));
    let q = "query($id: ID!) { node(id: $id) { __typename id ... on Member { email inviteCode } ... on MemberProfile { displayName roles } } }";

    // Self and admins get the private view from a `Member` ID, the profile from its own ID:
    // each ID answers with the type that gave it out, and no two types share an ID.
    let own = app.data_as(&a_token, q, json!({ "id": a_id })).await;
    assert_eq!(own["node"]["__typename"], json!("Member"));
    assert_eq!(own["node"]["id"], json!(a_id));
    assert_eq!(own["node"]["email"], json!("a@example.com"));
    let own_profile = app.data_as(&a_token, q, json!({ "id": a_profile })).await;
    assert_eq!(own_profile["node"]["__typename"], json!("MemberProfile"));
    assert_eq!(own_profile["node"]["id"], json!(a_profile));
    assert_ne!(a_profile, a_id);
    let by_admin = app.data_as(&admin, q, json!({ "id": b_id })).await;
    assert_eq!(by_admin["node"]["email"], json!("b@example.com"));
    let by_admin = app.data_as(&admin, q, json!({ "id": b_profile })).await;
    assert_eq!(by_admin["node"]["__typename"], json!("MemberProfile"));

    // The upline sees its team member's profile, and the member its upline's: no email.
    let team = app
        .data_as(
            &a_token,
            "{ me { team { edges { node { id } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        team["me"]["team"]["edges"][0]["node"]["id"],
        json!(b_profile)
    );
    let team_view = app.data_as(&a_token, q, json!({ "id": b_profile })).await;
    assert_eq!(team_view["node"]["__typename"], json!("MemberProfile"));
    assert_eq!(team_view["node"]["id"], json!(b_profile));
    assert_eq!(team_view["node"]["roles"], json!(["PUSH_HAND"]));
    assert!(team_view["node"].get("email").is_none());
    let upline_view = app.data_as(&b_token, q, json!({ "id": a_profile })).await;
    assert_eq!(upline_view["node"]["__typename"], json!("MemberProfile"));

    // A member's private ID (what profiles answered before they had IDs of their own) is
    // NOT_FOUND to its upline and its team.
    for (token, id) in [(&a_token, &b_id), (&b_token, &a_id)] {
        let resp = app.gql_as(token, q, json!({ "id": id })).await;
        assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{resp}");
    }

    // A stranger or anonymous: indistinguishable from an ID that does not exist.
    let missing = gid(Kind::Member, uuid::Uuid::now_v7());
    let shapes: Vec<Value> = [
        app.gql_as(&stranger, q, json!({ "id": b_id })).await,
        app.gql(q, json!({ "id": b_id })).await,
        app.gql_as(&stranger, q, json!({ "id": b_profile })).await,
        app.gql(q, json!({ "id": b_profile })).await,
        app.gql_as(&stranger, q, json!({ "id": missing })).await,
    ]
    .into_iter()
    .map(|r| {
        json!([
            r["data"],
            r["errors"][0]["message"],
            r["errors"][0]["extensions"]
        ])
    })
    .collect();
    for shape in &shapes {
        assert_eq!(shape, &shapes[4]);
    }
    assert_eq!(shapes[4][2]["code"], json!("NOT_FOUND"));
    let _ = uuid_of(&b_id);
}

/// A signed-in member's row is remembered between its requests, and every change of it is in
/// force at the member's next request: an application, an approval, a freeze.
#[tokio::test]
async fn remembered_members_follow_every_change_of_their_row() {
    // Remembered for a minute: only a change makes the next request read the row again.
    let app = TestApp::spawn_with(&["--viewer-ttl-ms", "60000"]).await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let (pusher, m) = app.user("pusher@example.com", CliRole::PushHand).await;
    let id = json!({ "id": gid(Kind::Member, m.id) });
    let apply = "mutation { applyForPartner { partnerApplication } }";
    let remembered = || app.metric("pushhand_viewer_rows_total{outcome=\"remembered\"}");

    let data = app.data_as(&pusher, apply, json!({})).await;
    assert_eq!(
        data["applyForPartner"]["partnerApplication"],
        json!("PENDING")
    );
    // Read again after the application: a remembered row would still say "no application".
    let resp = app.gql_as(&pusher, apply, json!({})).await;
    assert_eq!(error_code(&resp), Some("APPLICATION_PENDING"), "{resp}");
    // Nothing changed since: from memory, with the same outcome.
    let before = remembered().await;
    let resp = app.gql_as(&pusher, apply, json!({})).await;
    assert_eq!(error_code(&resp), Some("APPLICATION_PENDING"), "{resp}");
    assert_eq!(remembered().await - before, 1.0, "remembered");

    app.data_as(&admin, PARTNER_FLOW, id.clone()).await;
    let before = remembered().await;
    let resp = app.gql_as(&pusher, apply, json!({})).await;
    assert_eq!(error_code(&resp), Some("ALREADY_PARTNER"), "{resp}");
    assert_eq!(remembered().await - before, 0.0, "read after the approval");

    let freeze =
        "mutation($id: ID!) { freezeMember(memberId: $id, reason: \"chargebacks\") { frozen } }";
    app.data_as(&admin, freeze, id).await;
    let resp = app.gql_as(&pusher, apply, json!({})).await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"), "{resp}");
}

/// With Redis, a revocation made on one instance reaches the rows the others remember over
/// the event bus: the old token is refused there too, long before their time to live.
#[tokio::test]
async fn revocations_reach_remembered_rows_on_other_instances() {
    if without_redis() {
        return;
    }
    let ttl = ["--viewer-ttl-ms", "600000"];
    let a = TestApp::spawn_with(&ttl).await;
    let b = TestApp::spawn_sharing(&a, &ttl).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !(a.state.events.connected() && b.state.events.connected()) {
        assert!(
            std::time::Instant::now() < deadline,
            "event bus never connected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (admin, _) = a.user("admin@example.com", CliRole::Admin).await;
    let (token, m) = a.user("member@example.com", CliRole::PushHand).await;
    // Signed in, and not a cacheable answer: every request goes through the member's row.
    let ask = "{ me { id } categories { id } }";
    let remembered = || b.metric("pushhand_viewer_rows_total{outcome=\"remembered\"}");
    b.data_as(&token, ask, json!({})).await;
    let before = remembered().await;
    b.data_as(&token, ask, json!({})).await;
    assert_eq!(remembered().await - before, 1.0, "B remembers the row");

    let freeze =
        "mutation($id: ID!) { freezeMember(memberId: $id, reason: \"chargebacks\") { frozen } }";
    a.data_as(&admin, freeze, json!({ "id": gid(Kind::Member, m.id) }))
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let resp = b.gql_as(&token, ask, json!({})).await;
        if error_code(&resp) == Some("UNAUTHENTICATED") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B still accepts the revoked token: {resp}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
