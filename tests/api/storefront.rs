//! The storefront's foundations: members' addresses (validation, ownership, the default, the
//! limit, under concurrency), the region list an address picker walks, and the merchants'
//! shipping rules with the quote the checkout uses.

use entity::address;
use futures_util::future::join_all;
use pushhand::graphql::ids::Kind;
use pushhand::service::addresses::MAX_PER_MEMBER;
use pushhand::service::members::CliRole;
use pushhand::service::shipping::{self, Basis};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::fixtures::{gid, uuid_of};
use crate::helpers::{TestApp, error_code};

const ADDRESS_FIELDS: &str = "id recipientName phone province { code name level parentCode } \
     city { code name level parentCode } district { code name level parentCode } regionText \
     detail postalCode isDefault createdAt updatedAt";

fn add_query() -> String {
    format!("mutation($i: AddressInput!) {{ addAddress(input: $i) {{ {ADDRESS_FIELDS} }} }}")
}

fn list_query() -> String {
    format!("{{ me {{ addresses {{ {ADDRESS_FIELDS} }} }} }}")
}

/// An address in 北京市朝阳区 for `name`.
fn beijing(name: &str) -> Value {
    json!({
        "recipientName": name,
        "phone": "+86 138-1234-5678",
        "provinceCode": "110000",
        "cityCode": "110100",
        "districtCode": "110105",
        "detail": "建国路 88 号 1 号楼 1001",
        "postalCode": "100022",
    })
}

async fn add(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql_as(token, &add_query(), json!({ "i": input })).await
}

async fn add_ok(app: &TestApp, token: &str, input: Value) -> Value {
    let resp = add(app, token, input).await;
    assert!(resp.get("errors").is_none(), "{resp:#}");
    resp["data"]["addAddress"].clone()
}

async fn addresses(app: &TestApp, token: &str) -> Vec<Value> {
    app.data_as(token, &list_query(), json!({})).await["me"]["addresses"]
        .as_array()
        .expect("addresses")
        .clone()
}

fn names(list: &[Value]) -> Vec<&str> {
    list.iter()
        .map(|a| a["recipientName"].as_str().expect("name"))
        .collect()
}

fn defaults(list: &[Value]) -> Vec<&str> {
    list.iter()
        .filter(|a| a["isDefault"] == json!(true))
        .map(|a| a["recipientName"].as_str().expect("name"))
        .collect()
}

/// A plain buyer, registered through the API: its token and id.
async fn buyer(app: &TestApp, email: &str) -> (String, Uuid) {
    let resp = app.register(email, None, None).await;
    let token = resp["data"]["register"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("registered: {resp:#}"))
        .to_owned();
    let id = uuid_of(
        resp["data"]["register"]["member"]["id"]
            .as_str()
            .expect("id"),
    );
    (token, id)
}

/// The member's default addresses in the database itself.
async fn stored_defaults(app: &TestApp, member: Uuid) -> u64 {
    address::Entity::find()
        .filter(address::Column::MemberId.eq(member))
        .filter(address::Column::IsDefault.eq(true))
        .count(app.db())
        .await
        .expect("count")
}

#[tokio::test]
async fn addresses_keep_one_default_in_order() {
    let app = TestApp::spawn().await;
    let (token, me) = buyer(&app, "buyer@example.com").await;
    assert!(addresses(&app, &token).await.is_empty());

    let first = add_ok(&app, &token, beijing("甲")).await;
    assert_eq!(
        first["isDefault"],
        json!(true),
        "the first address is the default"
    );
    assert_eq!(first["phone"], "+8613812345678");
    assert_eq!(first["regionText"], "北京市朝阳区");
    assert_eq!(
        first["city"],
        json!({ "code": "110100", "name": "市辖区", "level": "CITY", "parentCode": "110000" })
    );
    assert_eq!(first["district"]["name"], "朝阳区");
    assert_eq!(first["province"]["parentCode"], Value::Null);
    assert_eq!(first["postalCode"], "100022");

    app.clock.advance(chrono::Duration::seconds(1));
    let mut second = beijing("乙");
    second["isDefault"] = json!(false);
    second["postalCode"] = Value::Null;
    let second = add_ok(&app, &token, second).await;
    assert_eq!(second["isDefault"], json!(false));
    assert_eq!(second["postalCode"], Value::Null);
    app.clock.advance(chrono::Duration::seconds(1));
    let third = add_ok(&app, &token, beijing("丙")).await;
    // Default first, then newest first.
    let list = addresses(&app, &token).await;
    assert_eq!(names(&list), ["甲", "丙", "乙"]);
    assert_eq!(defaults(&list), ["甲"]);

    // An address added as the default takes it over.
    app.clock.advance(chrono::Duration::seconds(1));
    let mut fourth = beijing("丁");
    fourth["isDefault"] = json!(true);
    add_ok(&app, &token, fourth).await;
    let list = addresses(&app, &token).await;
    assert_eq!(names(&list), ["丁", "丙", "乙", "甲"]);
    assert_eq!(defaults(&list), ["丁"]);

    // setDefaultAddress moves it.
    let set = app
        .data_as(
            &token,
            "mutation($id: ID!) { setDefaultAddress(id: $id) { recipientName isDefault } }",
            json!({ "id": second["id"] }),
        )
        .await;
    assert_eq!(set["setDefaultAddress"]["isDefault"], json!(true));
    assert_eq!(defaults(&addresses(&app, &token).await), ["乙"]);

    // An update replaces every field; isDefault false does not take the default away.
    let update = format!(
        "mutation($id: ID!, $i: AddressInput!) {{ updateAddress(id: $id, input: $i) {{ {ADDRESS_FIELDS} }} }}"
    );
    let moved = app
        .data_as(
            &token,
            &update,
            json!({ "id": second["id"], "i": {
                "recipientName": "乙二", "phone": "13900001111", "provinceCode": "440000",
                "cityCode": "441900", "districtCode": "441900", "detail": "南城街道 1 号",
                "isDefault": false } }),
        )
        .await["updateAddress"]
        .clone();
    assert_eq!(moved["isDefault"], json!(true));
    assert_eq!(moved["regionText"], "广东省东莞市");
    assert_eq!(moved["phone"], "+8613900001111");
    assert_eq!(moved["postalCode"], Value::Null);
    assert_eq!(moved["createdAt"], second["createdAt"]);

    // Removing the default makes the newest remaining address the default.
    let left = app
        .data_as(
            &token,
            "mutation($id: ID!) { removeAddress(id: $id) { recipientName isDefault } }",
            json!({ "id": second["id"] }),
        )
        .await["removeAddress"]
        .clone();
    let left = left.as_array().expect("left");
    assert_eq!(names(left), ["丁", "丙", "甲"]);
    assert_eq!(defaults(left), ["丁"]);
    // Removing one that is not the default leaves the default alone.
    let left = app
        .data_as(
            &token,
            "mutation($id: ID!) { removeAddress(id: $id) { recipientName isDefault } }",
            json!({ "id": third["id"] }),
        )
        .await["removeAddress"]
        .clone();
    assert_eq!(names(left.as_array().expect("left")), ["丁", "甲"]);
    assert_eq!(stored_defaults(&app, me).await, 1);

    // node(id:) answers the owner.
    let node = app
        .data_as(
            &token,
            "query($id: ID!) { node(id: $id) { id ... on Address { recipientName } } }",
            json!({ "id": first["id"] }),
        )
        .await;
    assert_eq!(node["node"]["recipientName"], "甲");
}

#[tokio::test]
async fn every_bad_field_is_reported_at_once() {
    let app = TestApp::spawn().await;
    let (token, _) = buyer(&app, "buyer@example.com").await;
    let resp = add(
        &app,
        &token,
        json!({
            "recipientName": "  ",
            "phone": "12812345678",
            "provinceCode": "110000",
            "cityCode": "120100",
            "districtCode": "999999",
            "detail": "路".repeat(121),
            "postalCode": "10002",
        }),
    )
    .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp:#}");
    let ext = &resp["errors"][0]["extensions"];
    let fields: Vec<&str> = ext["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["field"].as_str().expect("field"))
        .collect();
    assert_eq!(
        fields,
        [
            "input.recipientName",
            "input.phone",
            "input.cityCode",
            "input.districtCode",
            "input.detail",
            "input.postalCode",
        ]
    );
    assert_eq!(ext["field"], "input.recipientName");
    for f in ext["fields"].as_array().expect("fields") {
        assert!(!f["message"].as_str().expect("message").is_empty());
    }
    let message = resp["errors"][0]["message"].as_str().expect("message");
    assert!(
        message.contains("input.phone: must be a mainland China mobile number"),
        "{message}"
    );

    // Unknown codes, and codes that exist but do not nest.
    for (p, c, d, field) in [
        ("710000", "110100", "110101", "input.provinceCode"),
        ("110000", "310100", "310101", "input.cityCode"),
        ("440000", "440300", "440105", "input.districtCode"),
        ("11", "110100", "110101", "input.provinceCode"),
    ] {
        let mut input = beijing("甲");
        input["provinceCode"] = json!(p);
        input["cityCode"] = json!(c);
        input["districtCode"] = json!(d);
        let resp = add(&app, &token, input).await;
        assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp:#}");
        assert_eq!(resp["errors"][0]["extensions"]["field"], field, "{resp:#}");
    }
    // Nothing was written.
    assert!(addresses(&app, &token).await.is_empty());
}

#[tokio::test]
async fn another_members_address_is_not_found() {
    let app = TestApp::spawn().await;
    let (alice, _) = buyer(&app, "alice@example.com").await;
    let (bob, _) = buyer(&app, "bob@example.com").await;
    let (admin, _) = app.user("admin@example.com", CliRole::Admin).await;
    let mine = add_ok(&app, &alice, beijing("Alice")).await;
    let id = mine["id"].clone();
    for (query, vars) in [
        (
            "mutation($id: ID!, $i: AddressInput!) { updateAddress(id: $id, input: $i) { id } }",
            json!({ "id": id, "i": beijing("Bob") }),
        ),
        (
            "mutation($id: ID!) { removeAddress(id: $id) { id } }",
            json!({ "id": id }),
        ),
        (
            "mutation($id: ID!) { setDefaultAddress(id: $id) { id } }",
            json!({ "id": id }),
        ),
        (
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": id }),
        ),
    ] {
        for token in [&bob, &admin] {
            let resp = app.gql_as(token, query, vars.clone()).await;
            assert_eq!(error_code(&resp), Some("NOT_FOUND"), "{query}: {resp:#}");
        }
        let resp = app.gql(query, vars.clone()).await;
        let code = error_code(&resp);
        assert!(
            matches!(code, Some("UNAUTHENTICATED" | "NOT_FOUND")),
            "{query}: {resp:#}"
        );
    }
    // An unknown ID is the same NOT_FOUND; another kind of ID is VALIDATION.
    let resp = app
        .gql_as(
            &alice,
            "mutation($id: ID!) { setDefaultAddress(id: $id) { id } }",
            json!({ "id": gid(Kind::Address, Uuid::now_v7()) }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"));
    let resp = app
        .gql_as(
            &alice,
            "mutation($id: ID!) { setDefaultAddress(id: $id) { id } }",
            json!({ "id": gid(Kind::Order, uuid_of(id.as_str().expect("id"))) }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    // Nothing moved: Alice's address is as it was.
    let list = addresses(&app, &alice).await;
    assert_eq!(list, [mine]);
    // An admin reading Alice through node(id:) does not see her addresses.
    let alice_id = app.data_as(&alice, "{ me { id } }", json!({})).await["me"]["id"].clone();
    let resp = app
        .gql_as(
            &admin,
            "query($id: ID!) { node(id: $id) { ... on Member { addresses { id } } } }",
            json!({ "id": alice_id }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"), "{resp:#}");
    // Anonymous: no address book.
    let resp = app.gql(&add_query(), json!({ "i": beijing("x") })).await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn twenty_addresses_at_most() {
    let app = TestApp::spawn().await;
    let (token, _) = buyer(&app, "buyer@example.com").await;
    for i in 0..MAX_PER_MEMBER {
        add_ok(&app, &token, beijing(&format!("收件人{i}"))).await;
    }
    let resp = add(&app, &token, beijing("多一个")).await;
    assert_eq!(error_code(&resp), Some("ADDRESS_LIMIT_REACHED"), "{resp:#}");
    assert_eq!(addresses(&app, &token).await.len() as u64, MAX_PER_MEMBER);
}

#[tokio::test]
async fn concurrent_adds_never_pass_the_limit_and_leave_one_default() {
    let app = TestApp::spawn().await;
    let (token, me) = buyer(&app, "buyer@example.com").await;
    let results = join_all((0..30).map(|i| {
        let mut input = beijing(&format!("并发{i}"));
        input["isDefault"] = json!(i % 3 == 0);
        add(&app, &token, input)
    }))
    .await;
    let added = results.iter().filter(|r| r.get("errors").is_none()).count();
    let refused: Vec<_> = results.iter().filter_map(|r| error_code(r)).collect();
    assert_eq!(added as u64, MAX_PER_MEMBER, "{refused:?}");
    assert!(
        refused.iter().all(|c| *c == "ADDRESS_LIMIT_REACHED"),
        "{refused:?}"
    );
    let list = addresses(&app, &token).await;
    assert_eq!(list.len() as u64, MAX_PER_MEMBER);
    assert_eq!(defaults(&list).len(), 1);
    assert_eq!(stored_defaults(&app, me).await, 1);
}

#[tokio::test]
async fn concurrent_default_changes_leave_one_default() {
    let app = TestApp::spawn().await;
    let (token, me) = buyer(&app, "buyer@example.com").await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(add_ok(&app, &token, beijing(&format!("{i}"))).await["id"].clone());
    }
    // Forty default changes over nine addresses, racing the removal of the tenth (the
    // newest, so the default it may hand on is one of the nine).
    let set = "mutation($id: ID!) { setDefaultAddress(id: $id) { id isDefault } }";
    let remove = "mutation($id: ID!) { removeAddress(id: $id) { id } }";
    let mut calls: Vec<(&str, &Value)> = ids[..9]
        .iter()
        .cycle()
        .take(40)
        .map(|id| (set, id))
        .collect();
    calls.insert(20, (remove, &ids[9]));
    let results = join_all(
        calls
            .into_iter()
            .map(|(query, id)| app.gql_as(&token, query, json!({ "id": id }))),
    )
    .await;
    for r in &results {
        assert!(r.get("errors").is_none(), "{r:#}");
    }
    let list = addresses(&app, &token).await;
    assert_eq!(list.len(), 9);
    assert_eq!(defaults(&list).len(), 1);
    assert_eq!(stored_defaults(&app, me).await, 1);
}

#[tokio::test]
async fn the_database_refuses_a_second_default() {
    let app = TestApp::spawn().await;
    let (token, me) = buyer(&app, "buyer@example.com").await;
    let a = add_ok(&app, &token, beijing("甲")).await;
    let row = address::Entity::find_by_id(uuid_of(a["id"].as_str().expect("id")))
        .one(app.db())
        .await
        .expect("read")
        .expect("row");
    let second = address::Model {
        id: Uuid::now_v7(),
        ..row
    };
    let err = address::Entity::insert(address::ActiveModel::from(second))
        .exec_without_returning(app.db())
        .await
        .expect_err("a second default is refused");
    assert!(pushhand::db::is_unique_violation(&err), "{err}");
    assert_eq!(stored_defaults(&app, me).await, 1);
}

#[tokio::test]
async fn regions_walk_the_tree_anonymously() {
    let app = TestApp::spawn().await;
    let q = "query($p: String) { regions(parentCode: $p) { code name level parentCode } }";
    let provinces = app.data(q, json!({})).await["regions"].clone();
    let provinces = provinces.as_array().expect("list");
    assert_eq!(provinces.len(), 31);
    assert_eq!(
        provinces[0],
        json!({ "code": "110000", "name": "北京市", "level": "PROVINCE", "parentCode": null })
    );
    assert!(
        provinces
            .iter()
            .any(|p| p["code"] == "650000" && p["name"] == "新疆维吾尔自治区")
    );
    let bj = app.data(q, json!({ "p": "110000" })).await["regions"].clone();
    assert_eq!(
        bj,
        json!([{ "code": "110100", "name": "市辖区", "level": "CITY", "parentCode": "110000" }])
    );
    let districts = app.data(q, json!({ "p": "110100" })).await["regions"].clone();
    let districts = districts.as_array().expect("list");
    assert_eq!(districts.len(), 16);
    assert_eq!(districts[0]["name"], "东城区");
    assert!(districts.iter().all(|d| d["level"] == "DISTRICT"));
    let gd = app.data(q, json!({ "p": "440000" })).await["regions"].clone();
    assert!(gd.as_array().expect("list").len() >= 21);
    let dg = app.data(q, json!({ "p": "441900" })).await["regions"].clone();
    assert_eq!(dg[0]["code"], "441900");
    assert_eq!(dg[0]["level"], "DISTRICT");
    let leaf = app.data(q, json!({ "p": "110101" })).await["regions"].clone();
    assert_eq!(leaf, json!([]));
    let resp = app.gql(q, json!({ "p": "990000" })).await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"));
    let resp = app.gql(q, json!({ "p": "11" })).await;
    assert_eq!(error_code(&resp), Some("VALIDATION"));
    assert_eq!(resp["errors"][0]["extensions"]["field"], "parentCode");
}

const SET_RULE: &str = "mutation($m: ID!, $i: ShippingRuleInput!) {
  setShippingRule(merchantId: $m, input: $i) {
    merchant { id name } baseFee freeThreshold
    surcharges { province { code name } amount } updatedBy } }";

#[tokio::test]
async fn admins_set_shipping_rules_audited() {
    let app = TestApp::spawn().await;
    let (admin, admin_row) = app.user("admin@example.com", CliRole::Admin).await;
    let (buyer, _) = buyer(&app, "buyer@example.com").await;
    let (curator, _) = app.user("curator@example.com", CliRole::Curator).await;
    let merchant = pushhand::service::catalog::create_merchant(app.db(), "远方商家")
        .await
        .map_err(anyhow::Error::from)
        .expect("merchant");
    let other = pushhand::service::catalog::create_merchant(app.db(), "没有规则")
        .await
        .map_err(anyhow::Error::from)
        .expect("merchant");
    let m = gid(Kind::Merchant, merchant.id);
    let input = json!({
        "baseFee": "10.00",
        "freeThreshold": "99.00",
        "surcharges": [
            { "provinceCodes": ["650000", "540000"], "amount": "20.00" },
            { "provinceCodes": ["630000"], "amount": "8.5" },
        ],
    });
    for (token, code) in [(&buyer, "FORBIDDEN"), (&curator, "FORBIDDEN")] {
        let resp = app
            .gql_as(token, SET_RULE, json!({ "m": m, "i": input }))
            .await;
        assert_eq!(error_code(&resp), Some(code), "{resp:#}");
    }
    let resp = app.gql(SET_RULE, json!({ "m": m, "i": input })).await;
    assert_eq!(error_code(&resp), Some("UNAUTHENTICATED"));

    // The merchant's rule, before any is set: none (free shipping).
    let read = "query($m: ID!) { node(id: $m) { ... on Merchant { shippingRule { baseFee } } } }";
    let none = app.data_as(&admin, read, json!({ "m": m })).await;
    assert_eq!(none["node"]["shippingRule"], Value::Null);
    let resp = app.gql_as(&buyer, read, json!({ "m": m })).await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));

    let set = app
        .data_as(&admin, SET_RULE, json!({ "m": m, "i": input }))
        .await["setShippingRule"]
        .clone();
    assert_eq!(set["merchant"]["name"], "远方商家");
    assert_eq!(
        (&set["baseFee"], &set["freeThreshold"]),
        (&json!("10.00"), &json!("99.00"))
    );
    assert_eq!(
        set["surcharges"],
        json!([
            { "province": { "code": "540000", "name": "西藏自治区" }, "amount": "20.00" },
            { "province": { "code": "630000", "name": "青海省" }, "amount": "8.50" },
            { "province": { "code": "650000", "name": "新疆维吾尔自治区" }, "amount": "20.00" },
        ])
    );
    assert_eq!(set["updatedBy"], json!(gid(Kind::Member, admin_row.id)));
    let read_back = app.data_as(&admin, read, json!({ "m": m })).await;
    assert_eq!(read_back["node"]["shippingRule"]["baseFee"], "10.00");

    // Replaced whole: no threshold, one surcharge left.
    let replaced = app
        .data_as(
            &admin,
            SET_RULE,
            json!({ "m": m, "i": { "baseFee": "6", "surcharges": [
                { "provinceCodes": ["650000"], "amount": "25.00" }] } }),
        )
        .await["setShippingRule"]
        .clone();
    assert_eq!(replaced["freeThreshold"], Value::Null);
    assert_eq!(replaced["baseFee"], "6.00");
    assert_eq!(replaced["surcharges"].as_array().map(Vec::len), Some(1));

    // Every bad field at once; nothing changes.
    let resp = app
        .gql_as(
            &admin,
            SET_RULE,
            json!({ "m": m, "i": { "baseFee": "-1", "freeThreshold": "0", "surcharges": [
                { "provinceCodes": ["650000", "659000"], "amount": "0.001" }] } }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("VALIDATION"), "{resp:#}");
    let fields: Vec<&str> = resp["errors"][0]["extensions"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["field"].as_str().expect("field"))
        .collect();
    assert_eq!(
        fields,
        [
            "input.baseFee",
            "input.freeThreshold",
            "input.surcharges[0].amount",
            "input.surcharges[0].provinceCodes[1]",
        ]
    );
    let resp = app
        .gql_as(
            &admin,
            SET_RULE,
            json!({ "m": gid(Kind::Merchant, Uuid::now_v7()), "i": input }),
        )
        .await;
    assert_eq!(error_code(&resp), Some("NOT_FOUND"));

    // Listed for admins, newest first.
    let list = app
        .data_as(
            &admin,
            "{ shippingRules(first: 10) { edges { node { merchant { name } baseFee } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["shippingRules"]["edges"],
        json!([{ "node": { "merchant": { "name": "远方商家" }, "baseFee": "6.00" } }])
    );
    let resp = app
        .gql_as(&buyer, "{ shippingRules { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(error_code(&resp), Some("FORBIDDEN"));

    // Two audit entries, each with the rule it replaced.
    let log = app
        .data_as(
            &admin,
            "query($t: ID) { auditLog(action: SHIPPING_RULE_SET, targetId: $t) {
               edges { node { actorId targetId arguments } } } }",
            json!({ "t": m }),
        )
        .await;
    let entries = log["auditLog"]["edges"].as_array().expect("edges").clone();
    assert_eq!(entries.len(), 2, "{log:#}");
    let latest = &entries[0]["node"];
    assert_eq!(latest["targetId"], json!(m));
    assert_eq!(latest["actorId"], json!(gid(Kind::Member, admin_row.id)));
    assert_eq!(
        latest["arguments"],
        json!({
            "baseFee": "6.00", "freeThreshold": null, "surcharges": { "650000": "25.00" },
            "previous": { "baseFee": "10.00", "freeThreshold": "99.00", "surcharges": {
                "540000": "20.00", "630000": "8.50", "650000": "20.00" } },
        })
    );
    assert_eq!(entries[1]["node"]["arguments"]["previous"], Value::Null);

    // The quote the checkout will use: per merchant, one statement (the rules joined to
    // their surcharges) whatever their number.
    let money = |fen| entity::Money::from_fen(fen);
    let before = app.statements().await;
    let quotes = shipping::quote(
        app.db(),
        &[
            (merchant.id, money(3_000)),
            (other.id, money(100)),
            (merchant.id, money(2_000)),
        ],
        "650000",
    )
    .await
    .map_err(anyhow::Error::from)
    .expect("quote");
    assert_eq!(app.statements().await - before, 1);
    assert_eq!(quotes.len(), 2);
    assert_eq!(
        (quotes[0].merchant_id, quotes[0].subtotal),
        (merchant.id, money(5_000))
    );
    assert_eq!(quotes[0].basis, Basis::BaseFee);
    assert_eq!(quotes[0].fee.to_decimal().to_string(), "31.00");
    assert_eq!(
        (quotes[1].merchant_id, quotes[1].basis),
        (other.id, Basis::NoRule)
    );
    assert_eq!(quotes[1].fee, entity::Money::ZERO);
    let to_beijing = shipping::quote(app.db(), &[(merchant.id, money(5_000))], "110000")
        .await
        .map_err(anyhow::Error::from)
        .expect("quote");
    assert_eq!(to_beijing[0].fee.to_decimal().to_string(), "6.00");
    assert_eq!(to_beijing[0].reason(), "base fee 6.00; fee 6.00");
}

/// Hears every published batch (a listener beside the app's own caches).
/// Fees are money: admins setting one merchant's rule at once take turns on the merchant's
/// row, so the rule left is one of theirs whole (never one's base fee with another's
/// surcharges) and the audit entries form one chain — each names as `previous` the rule the
/// entry before it set, exactly one names none, and the rule left is nobody's `previous`.
#[tokio::test]
async fn concurrent_rule_changes_leave_one_whole_rule_and_one_audit_chain() {
    const ADMINS: usize = 12;
    let app = TestApp::spawn().await;
    let mut admins = Vec::with_capacity(ADMINS);
    for i in 0..ADMINS {
        admins.push(
            app.user(&format!("admin{i}@example.com"), CliRole::Admin)
                .await
                .0,
        );
    }
    let merchant = pushhand::service::catalog::create_merchant(app.db(), "并发商家")
        .await
        .map_err(anyhow::Error::from)
        .expect("merchant");
    let m = gid(Kind::Merchant, merchant.id);
    // Admin i sets base fee i + 1 and the same amount as Xinjiang's surcharge.
    let sets = admins.iter().enumerate().map(|(i, token)| {
        let fee = format!("{}.00", i + 1);
        let input = json!({ "baseFee": fee, "surcharges": [
            { "provinceCodes": ["650000"], "amount": fee }] });
        let (app, m) = (&app, &m);
        async move {
            app.gql_as(token, SET_RULE, json!({ "m": m, "i": input }))
                .await
        }
    });
    for resp in join_all(sets).await {
        assert!(resp.get("errors").is_none(), "{resp:#}");
    }

    let rule = shipping::rule(app.db(), merchant.id)
        .await
        .map_err(anyhow::Error::from)
        .expect("rule")
        .expect("a rule is left");
    assert_eq!(
        rule.surcharges,
        vec![("650000".to_owned(), rule.row.base_fee)],
        "one admin's rule, whole"
    );
    let left = json!(rule.row.base_fee.to_string()).to_string();

    let log = app
        .data_as(
            &admins[0],
            "query($t: ID) { auditLog(action: SHIPPING_RULE_SET, targetId: $t, first: 50) {
               edges { node { arguments } } } }",
            json!({ "t": m }),
        )
        .await;
    let entries: Vec<Value> = log["auditLog"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["arguments"].clone())
        .collect();
    assert_eq!(entries.len(), ADMINS, "{log:#}");
    let set: std::collections::BTreeSet<String> =
        entries.iter().map(|a| a["baseFee"].to_string()).collect();
    assert_eq!(set.len(), ADMINS, "every admin's rule was written once");
    let previous: Vec<String> = entries
        .iter()
        .filter(|a| !a["previous"].is_null())
        .map(|a| a["previous"]["baseFee"].to_string())
        .collect();
    assert_eq!(
        previous.len(),
        ADMINS - 1,
        "exactly one entry replaced nothing"
    );
    let distinct: std::collections::BTreeSet<&String> = previous.iter().collect();
    assert_eq!(
        distinct.len(),
        ADMINS - 1,
        "no rule was replaced twice: {previous:?}"
    );
    assert!(
        !previous.contains(&left),
        "the rule left was replaced by no one"
    );
    for a in &entries {
        if !a["previous"].is_null() {
            let p = &a["previous"];
            assert_eq!(p["surcharges"]["650000"], p["baseFee"], "{a:#}");
            assert!(set.contains(&p["baseFee"].to_string()), "{a:#}");
        }
    }
}

#[derive(Default)]
pub(crate) struct Heard(pub(crate) std::sync::Mutex<Vec<pushhand::events::Event>>);

#[async_trait::async_trait]
impl pushhand::events::Listener for Heard {
    async fn published(&self, batch: &[pushhand::events::Event]) {
        self.0.lock().expect("lock").extend_from_slice(batch);
    }
}

/// Every address write tells the caches that the member's own views changed (after its
/// commit), so a remembered or cached answer of the member never shows the old addresses.
#[tokio::test]
async fn every_address_write_publishes_the_members_change() {
    use pushhand::events::{Event, Kind as EventKind};
    use pushhand::service::addresses::{self as svc, AddressInput};
    let app = TestApp::spawn().await;
    let (_, member) = buyer(&app, "heard@example.com").await;
    let heard = std::sync::Arc::new(Heard::default());
    let events = app.state.events.clone().with_listener(heard.clone());
    let input = |name: &str| AddressInput {
        recipient_name: name.into(),
        phone: "13812345678".into(),
        province_code: "110000".into(),
        city_code: "110100".into(),
        district_code: "110105".into(),
        detail: "建国路 88 号".into(),
        postal_code: None,
        is_default: None,
    };
    let changed = Event::new(member, EventKind::OwnChanged, member);
    let now = app.clock_now();
    let expect_one = |step: &str| {
        let batch = std::mem::take(&mut *heard.0.lock().expect("lock"));
        assert_eq!(batch, vec![changed], "{step}");
    };
    let first = svc::add(app.db(), &events, member, &input("甲"), now)
        .await
        .expect("added");
    expect_one("add");
    let second = svc::add(app.db(), &events, member, &input("乙"), now)
        .await
        .expect("added");
    expect_one("add");
    svc::update(app.db(), &events, member, first.id, &input("丙"), now)
        .await
        .expect("updated");
    expect_one("update");
    svc::set_default(app.db(), &events, member, second.id, now)
        .await
        .expect("default set");
    expect_one("set default");
    svc::remove(app.db(), &events, member, first.id, now)
        .await
        .expect("removed");
    expect_one("remove");
    // A refused write publishes nothing.
    let refused = svc::add(app.db(), &events, member, &input(""), now).await;
    assert!(refused.is_err());
    assert!(
        heard.0.lock().expect("lock").is_empty(),
        "nothing on a refusal"
    );
}
