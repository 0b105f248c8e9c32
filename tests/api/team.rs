//! Teams on a generated tree: every level lists exactly the right members, pages walk them
//! once, and the counters agree with the tree.

use std::collections::{HashMap, HashSet};

use chrono::Duration;
use entity::member;
use pushhand::graphql::ids::Kind;
use pushhand::service::auth;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures::{self, gid, uuid_of};
use crate::helpers::{TestApp, error_code};

async fn add(app: &TestApp, upline: Option<Uuid>, name: &str) -> member::Model {
    fixtures::member(app, name, member::Tier::PushHand, upline).await
}

fn token(app: &TestApp, m: &member::Model) -> String {
    auth::issue_token(
        &app.state.jwt_secret,
        m,
        app.clock_now(),
        Duration::hours(1),
    )
    .map_err(anyhow::Error::from)
    .expect("token")
}

const TEAM: &str = "query($level: Int!, $first: Int, $after: String) { me { team(level: $level, first: $first, after: $after) {
  edges { cursor node { id displayName joinedAt roles } } pageInfo { hasNextPage endCursor } } } }";

async fn walk(app: &TestApp, token: &str, level: i32, first: i32) -> Vec<Uuid> {
    let mut out = Vec::new();
    let mut after = Value::Null;
    loop {
        let data = app
            .data_as(
                token,
                TEAM,
                json!({ "level": level, "first": first, "after": after }),
            )
            .await;
        let team = &data["me"]["team"];
        out.extend(
            team["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| uuid_of(e["node"]["id"].as_str().expect("id"))),
        );
        if !team["pageInfo"]["hasNextPage"].as_bool().expect("bool") {
            return out;
        }
        after = team["pageInfo"]["endCursor"].clone();
    }
}

#[tokio::test]
async fn team_levels_and_stats_match_the_tree() {
    // Whole pages of 100 with many fields: over the default complexity limit (tested in
    // `limits`), which is not what this test is about.
    let app = TestApp::spawn_with(&["--max-complexity", "100000"]).await;
    // root → 3 children → 3 grandchildren each → 2 great-grandchildren each → 1 more level.
    let root = add(&app, None, "root").await;
    let mut parent: HashMap<Uuid, Uuid> = HashMap::new();
    let mut generation = vec![root.id];
    let fanout = [3, 3, 2, 1];
    for (depth, n) in fanout.iter().enumerate() {
        let mut next = Vec::new();
        for (i, p) in generation.iter().enumerate() {
            for j in 0..*n {
                let m = add(&app, Some(*p), &format!("d{depth}-{i}-{j}")).await;
                parent.insert(m.id, *p);
                next.push(m.id);
            }
        }
        generation = next;
    }
    let ancestor_at = |mut m: Uuid, level: usize| -> Option<Uuid> {
        for _ in 0..level {
            m = *parent.get(&m)?;
        }
        Some(m)
    };
    let expected = |of: Uuid, level: usize| -> HashSet<Uuid> {
        parent
            .keys()
            .copied()
            .filter(|m| ancestor_at(*m, level) == Some(of))
            .collect()
    };

    let root_token = token(&app, &root);
    for level in 1..=3 {
        let served = walk(&app, &root_token, level, 4).await;
        let set: HashSet<Uuid> = served.iter().copied().collect();
        assert_eq!(
            set.len(),
            served.len(),
            "level {level} served someone twice"
        );
        assert_eq!(set, expected(root.id, level as usize), "level {level}");
    }
    assert_eq!(
        expected(root.id, 4).len(),
        18,
        "the tree is four levels deep"
    );
    let resp = app.gql_as(&root_token, TEAM, json!({ "level": 4 })).await;
    assert_eq!(
        error_code(&resp),
        Some("VALIDATION"),
        "only three levels are kept"
    );
    let resp = app.gql_as(&root_token, TEAM, json!({ "level": 0 })).await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));

    // From a middle member's point of view too.
    let child = *parent
        .iter()
        .find(|(_, p)| **p == root.id)
        .map(|(c, _)| c)
        .expect("a child");
    let child_row = member::Entity::find_by_id(child)
        .one(app.db())
        .await
        .expect("query")
        .expect("row");
    let child_token = token(&app, &child_row);
    for level in 1..=3 {
        let set: HashSet<Uuid> = walk(&app, &child_token, level, 100)
            .await
            .into_iter()
            .collect();
        assert_eq!(set, expected(child, level as usize), "child level {level}");
    }

    let stats =
        "{ me { teamStats { totalMembers newThisMonth levels { level members newThisMonth } } } }";
    let data = app.data_as(&root_token, stats, json!({})).await;
    assert_eq!(
        data["me"]["teamStats"]["levels"],
        json!([
            { "level": 1, "members": 3, "newThisMonth": 3 },
            { "level": 2, "members": 9, "newThisMonth": 9 },
            { "level": 3, "members": 18, "newThisMonth": 18 },
        ])
    );
    assert_eq!(data["me"]["teamStats"]["totalMembers"], json!(30));

    // Next month's newcomers count as new; last month's no longer do.
    app.clock.advance(Duration::days(40));
    let newcomer = add(&app, Some(root.id), "newcomer").await;
    let data = app.data_as(&token(&app, &root), stats, json!({})).await;
    assert_eq!(
        data["me"]["teamStats"]["levels"][0],
        json!({ "level": 1, "members": 4, "newThisMonth": 1 })
    );
    assert_eq!(data["me"]["teamStats"]["newThisMonth"], json!(1));
    // Newest first.
    let first = walk(&app, &token(&app, &root), 1, 1).await;
    assert_eq!(first[0], newcomer.id);
    let _ = gid(Kind::Member, root.id);
}

#[tokio::test]
async fn team_profiles_never_show_private_fields() {
    let app = TestApp::spawn().await;
    let root = add(&app, None, "root").await;
    add(&app, Some(root.id), "kid").await;
    // `MemberProfile` has no email, phone or codes at all: asking is a schema error.
    let resp = app
        .gql_as(
            &token(&app, &root),
            "{ me { team { edges { node { email } } } } }",
            json!({}),
        )
        .await;
    assert!(
        resp["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("email")),
        "{resp}"
    );
    assert_eq!(resp["data"], Value::Null);
}
