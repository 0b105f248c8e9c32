//! The integration suite, one binary with a module per area. Every test starts its own app
//! (built by the same `App::build` as `main`, on port 0) against a fresh database: a SQLite
//! file in a temporary directory by default, or a new PostgreSQL database when
//! `PUSHHAND_TEST_DATABASE_URL` names a PostgreSQL server (see `helpers`).

mod after_sales;
mod audit;
mod back_office;
mod batch;
mod browser_http;
mod cart;
mod catalog;
mod catalog_admin;
mod catalog_answers;
mod checkout_cart;
mod checkouts;
mod config;
mod coupons;
mod credentials;
mod curation;
mod earnings;
mod faults;
mod fixtures;
mod front_door;
mod fulfilment;
mod funnel;
mod fuzz;
mod helpers;
mod http;
mod ide;
mod images;
mod leaderboards;
mod ledger_props;
mod levels;
mod limits;
mod live;
mod members;
mod merchant;
mod money_guards;
mod n_plus_one;
mod node;
mod notes;
mod order_lists;
mod otlp;
mod own_answers;
mod payments;
mod payouts;
mod persisted;
mod posters;
mod refunds;
mod response_cache;
mod schema;
mod seed;
mod storefront;
mod team;
mod webhooks;
mod ws;
