//! Payouts of withdrawals (issue #28, item 3).
//!
//! - `payout_accounts`: where a member is paid — one account per member and channel
//!   (`WECHAT` openid, `ALIPAY` account, `MANUAL` bank card), a unique index.
//! - `withdrawals` gains what its payout pays to (a snapshot of the account when requested:
//!   later account changes do not redirect it), the provider's reference, the failure
//!   reason, what the member's client needs to confirm a WeChat transfer, and when it ended.
//!   Withdrawals approved before payouts existed were paid then: `APPROVED` becomes `PAID`.
//! - A withdrawal has at most one outcome in the ledger: a unique index on
//!   `ledger_entries(withdrawal_id)` over `WITHDRAWAL_PAID`, `WITHDRAWAL_FAILED` and
//!   `WITHDRAWAL_REJECTED` (partial, on SQLite and PostgreSQL alike), and at most one fee.
//!   Funds are returned, or paid, once, whatever the application does.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [(&str, u32); 7] = [
    ("payout_channel", 16),
    ("payout_account", 128),
    ("payout_holder", 64),
    ("payout_bank", 64),
    ("payout_reference", 128),
    ("payout_error", 512),
    ("payout_client_params", 1024),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("payout_accounts")
                    .col(pk_uuid("id"))
                    .col(uuid("member_id"))
                    .col(string_len("channel", 16))
                    .col(string_len("account", 128))
                    .col(string_len_null("holder_name", 64))
                    .col(string_len_null("bank_name", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_payout_accounts_member_id")
                            .from("payout_accounts", "member_id")
                            .to("members", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payout_accounts_member_channel")
                    .table("payout_accounts")
                    .col("member_id")
                    .col("channel")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // SQLite adds one column per statement.
        for (name, len) in COLUMNS {
            manager
                .alter_table(
                    Table::alter()
                        .table("withdrawals")
                        .add_column(string_len_null(name, len))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("withdrawals")
                    .add_column(timestamp_with_time_zone_null("finished_at"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for sql in [
            "UPDATE withdrawals SET status = 'PAID', payout_channel = 'MANUAL', finished_at = reviewed_at \
             WHERE status = 'APPROVED'",
            "CREATE UNIQUE INDEX idx_ledger_entries_withdrawal_outcome ON ledger_entries (withdrawal_id) \
             WHERE event IN ('WITHDRAWAL_PAID', 'WITHDRAWAL_FAILED', 'WITHDRAWAL_REJECTED')",
            "CREATE UNIQUE INDEX idx_ledger_entries_withdrawal_fee ON ledger_entries (withdrawal_id) \
             WHERE event = 'WITHDRAWAL_FEE'",
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for sql in [
            "DROP INDEX IF EXISTS idx_ledger_entries_withdrawal_outcome",
            "DROP INDEX IF EXISTS idx_ledger_entries_withdrawal_fee",
            "UPDATE withdrawals SET status = 'APPROVED' WHERE status IN ('PAID', 'PROCESSING')",
        ] {
            db.execute_unprepared(sql).await?;
        }
        for name in COLUMNS
            .iter()
            .map(|(n, _)| *n)
            .chain(std::iter::once("finished_at"))
        {
            manager
                .alter_table(
                    Table::alter()
                        .table("withdrawals")
                        .drop_column(name)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_table(Table::drop().table("payout_accounts").to_owned())
            .await
    }
}
