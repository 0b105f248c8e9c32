//! Reconciliation (对账) of a provider's daily trade bill with our payments, read-only:
//! `pushhand reconcile --provider wechat|alipay --file BILL.csv [--date YYYY-MM-DD]`.
//!
//! Bills read:
//! - **WeChat Pay trade bill** (交易账单, `bill_type=ALL`, as `GET /v3/bill/tradebill`'s
//!   download gives it): a header row (`交易时间,公众账号ID,…,微信订单号,商户订单号,…,交易状态,
//!   …,应结订单金额,…,订单金额,…`), one row per trade whose every field starts with a
//!   backtick (`` `2026-12-02 10:00:00,`wx…,`… ``), then the summary: a header row
//!   (`总交易单数,应结订单总金额,…`) and its values. `交易状态` `SUCCESS` rows are payments;
//!   `REFUND` and `REVOKED` rows are counted, not matched. The amount compared is `订单金额`
//!   (the order's total, what our intent asked), else `应结订单金额`.
//! - **Alipay business detail** (业务明细, the `*_业务明细.csv` of the bill download):
//!   `#` comment lines before and after (account, dates, `#交易合计…`, export time), a header
//!   row (`支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,…,订单金额（元）,…`), one
//!   row per trade, fields padded with tabs and spaces. `业务类型` `交易` rows are payments.
//!
//! Encoding: Alipay writes GBK, WeChat UTF-8. A file that is valid UTF-8 (a BOM is skipped)
//! is read as UTF-8, anything else as GBK (GB18030, its superset).
//!
//! The report: trades paid at the provider but not here (no intent of ours, or one not
//! `PAID`), intents `PAID` here through that provider on the bill's days (Beijing time) but
//! not in the bill, and amount differences. Intents booked without the provider
//! (`confirmPayment`) are not the provider's and are not compared.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use entity::{Money, payment_intent};
use rust_decimal::Decimal;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::Channel;

/// Whose bill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillProvider {
    Wechat,
    Alipay,
}

impl BillProvider {
    /// The payment channel its trades are ours under.
    pub fn channel(self) -> Channel {
        match self {
            BillProvider::Wechat => Channel::WechatJsapi,
            BillProvider::Alipay => Channel::Alipay,
        }
    }
}

/// One payment of a bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillRow {
    /// Our `out_trade_no` (an intent's 32 hex digits, when ours).
    pub out_trade_no: String,
    /// The provider's transaction number.
    pub reference: String,
    /// In CNY, exact.
    pub amount: Decimal,
    /// When it was paid, Beijing time, when the bill says.
    pub at: Option<NaiveDateTime>,
}

/// A bill read: its payments, and how many rows were not payments (refunds…).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bill {
    pub payments: Vec<BillRow>,
    pub other_rows: usize,
}

/// The text of a bill file: UTF-8 (BOM skipped) when it is, else GBK.
pub fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    }
}

fn amount(text: &str) -> Option<Decimal> {
    let value: Decimal = text.trim().parse().ok()?;
    super::to_fen(value).map(super::from_fen)
}

fn time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok()
}

fn column(header: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| header.iter().position(|h| h == n))
}

/// Reads a WeChat Pay trade bill.
pub fn parse_wechat(bytes: &[u8]) -> anyhow::Result<Bill> {
    let text = decode(bytes);
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let header: Vec<String> = lines
        .next()
        .context("an empty bill")?
        .split(',')
        .map(|h| h.trim().trim_start_matches('`').to_owned())
        .collect();
    let need = |names: &[&str]| {
        column(&header, names).with_context(|| format!("the bill has no {} column", names[0]))
    };
    let at = need(&["交易时间"])?;
    let reference = need(&["微信订单号"])?;
    let out_trade_no = need(&["商户订单号"])?;
    let state = need(&["交易状态"])?;
    let total = need(&["订单金额", "应结订单金额"])?;
    let mut bill = Bill::default();
    for (n, line) in lines.enumerate() {
        if line.starts_with("总交易单数") {
            break;
        }
        let Some(body) = line.strip_prefix('`') else {
            bail!("row {}: a trade row's fields start with a backtick", n + 2);
        };
        let fields: Vec<&str> = body.split(",`").collect();
        if fields.len() < header.len().min(total + 1) {
            bail!(
                "row {}: {} fields, the header has {}",
                n + 2,
                fields.len(),
                header.len()
            );
        }
        let field = |i: usize| fields.get(i).map(|f| f.trim()).unwrap_or("");
        if field(state) != "SUCCESS" {
            bill.other_rows += 1;
            continue;
        }
        bill.payments.push(BillRow {
            out_trade_no: field(out_trade_no).to_owned(),
            reference: field(reference).to_owned(),
            amount: amount(field(total))
                .with_context(|| format!("row {}: amount {:?}", n + 2, field(total)))?,
            at: time(field(at)),
        });
    }
    Ok(bill)
}

/// Reads an Alipay business detail bill (业务明细).
pub fn parse_alipay(bytes: &[u8]) -> anyhow::Result<Bill> {
    let text = decode(bytes);
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let header: Vec<String> = lines
        .next()
        .context("a bill without a header row")?
        .split(',')
        .map(|h| h.trim().to_owned())
        .collect();
    let need = |names: &[&str]| {
        column(&header, names).with_context(|| format!("the bill has no {} column", names[0]))
    };
    let reference = need(&["支付宝交易号"])?;
    let out_trade_no = need(&["商户订单号"])?;
    let kind = need(&["业务类型"])?;
    let total = need(&["订单金额（元）", "订单金额(元)"])?;
    let done = need(&["完成时间"])?;
    let mut bill = Bill::default();
    for (n, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() < header.len() {
            bail!(
                "row {}: {} fields, the header has {}",
                n + 2,
                fields.len(),
                header.len()
            );
        }
        if fields[kind] != "交易" {
            bill.other_rows += 1;
            continue;
        }
        bill.payments.push(BillRow {
            out_trade_no: fields[out_trade_no].to_owned(),
            reference: fields[reference].to_owned(),
            amount: amount(fields[total])
                .with_context(|| format!("row {}: amount {:?}", n + 2, fields[total]))?,
            at: time(fields[done]),
        });
    }
    Ok(bill)
}

/// One of our payments through the provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ours {
    pub intent_id: Uuid,
    pub order_id: Uuid,
    pub amount: Money,
    /// `PAID`, `OPEN`, `MISMATCH`.
    pub status: &'static str,
    pub reference: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
}

/// What reconciling a bill found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The Beijing days compared (those of the bill's payments, or `--date`).
    pub days: BTreeSet<NaiveDate>,
    /// Payments in the bill.
    pub bill_payments: usize,
    /// Rows that were not payments (refunds, revoked).
    pub bill_other_rows: usize,
    /// Payments in the bill and here, same amount.
    pub matched: usize,
    /// Paid at the provider, not here: no intent of ours (`None`) or one not `PAID`.
    pub paid_at_provider_only: Vec<(BillRow, Option<Ours>)>,
    /// Paid here through the provider on those days, not in the bill.
    pub paid_here_only: Vec<Ours>,
    /// In both, amounts differ.
    pub amount_differences: Vec<(BillRow, Ours)>,
}

impl Report {
    /// Whether the bill and the books agree.
    pub fn clean(&self) -> bool {
        self.paid_at_provider_only.is_empty()
            && self.paid_here_only.is_empty()
            && self.amount_differences.is_empty()
    }

    /// The report as text, one finding per line.
    pub fn render(&self, provider: BillProvider) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let days: Vec<String> = self.days.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(
            out,
            "{provider:?} bill, days {} (Beijing): {} payments ({} other rows), {} matched",
            if days.is_empty() {
                "none".to_owned()
            } else {
                days.join(", ")
            },
            self.bill_payments,
            self.bill_other_rows,
            self.matched
        );
        let _ = writeln!(
            out,
            "paid at the provider, not here: {}",
            self.paid_at_provider_only.len()
        );
        for (row, ours) in &self.paid_at_provider_only {
            let _ = writeln!(
                out,
                "  out_trade_no={} reference={} amount={} here={}",
                row.out_trade_no,
                row.reference,
                row.amount,
                ours.as_ref().map_or("no such payment", |o| o.status)
            );
        }
        let _ = writeln!(
            out,
            "paid here, not in the bill: {}",
            self.paid_here_only.len()
        );
        for o in &self.paid_here_only {
            let _ = writeln!(
                out,
                "  out_trade_no={} order={} amount={} reference={}",
                super::out_trade_no(o.intent_id),
                o.order_id,
                o.amount,
                o.reference.as_deref().unwrap_or("-")
            );
        }
        let _ = writeln!(out, "amount differences: {}", self.amount_differences.len());
        for (row, o) in &self.amount_differences {
            let _ = writeln!(
                out,
                "  out_trade_no={} order={} bill={} here={}",
                row.out_trade_no, o.order_id, row.amount, o.amount
            );
        }
        out
    }
}

fn ours(i: &payment_intent::Model) -> Ours {
    Ours {
        intent_id: i.id,
        order_id: i.order_id,
        amount: i.amount,
        status: match i.status {
            payment_intent::Status::Open => "OPEN",
            payment_intent::Status::Paid => "PAID",
            payment_intent::Status::Mismatch => "MISMATCH",
        },
        reference: i.provider_reference.clone(),
        paid_at: i.paid_at,
    }
}

/// Compares `bill` with our intents of `provider`'s channel: the bill's own, and those paid
/// on `days` (default: the days of the bill's payments, Beijing time). Reads only.
pub async fn reconcile(
    db: &impl ConnectionTrait,
    provider: BillProvider,
    bill: Bill,
    days: Option<BTreeSet<NaiveDate>>,
) -> anyhow::Result<Report> {
    let channel = provider.channel().code();
    let days = days.unwrap_or_else(|| {
        bill.payments
            .iter()
            .filter_map(|r| r.at.map(|t| t.date()))
            .collect()
    });
    let mut report = Report {
        days: days.clone(),
        bill_payments: bill.payments.len(),
        bill_other_rows: bill.other_rows,
        ..Report::default()
    };
    // The bill's intents, by id, in chunks.
    let ids: Vec<Uuid> = bill
        .payments
        .iter()
        .filter_map(|r| super::intent_of(&r.out_trade_no))
        .collect();
    let mut known: BTreeMap<Uuid, payment_intent::Model> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        for i in payment_intent::Entity::find()
            .filter(payment_intent::Column::Id.is_in(chunk.to_vec()))
            .filter(payment_intent::Column::Channel.eq(channel))
            .all(db)
            .await?
        {
            known.insert(i.id, i);
        }
    }
    let mut in_bill = BTreeSet::new();
    for row in bill.payments {
        let intent = super::intent_of(&row.out_trade_no).and_then(|id| known.get(&id));
        match intent {
            Some(i) if i.status == payment_intent::Status::Paid => {
                in_bill.insert(i.id);
                if Some(i.amount) == Money::from_decimal(row.amount) {
                    report.matched += 1;
                } else {
                    report.amount_differences.push((row, ours(i)));
                }
            }
            Some(i) => {
                in_bill.insert(i.id);
                report.paid_at_provider_only.push((row, Some(ours(i))));
            }
            None => report.paid_at_provider_only.push((row, None)),
        }
    }
    // Ours paid on those days (Beijing), not in the bill.
    let beijing = super::beijing();
    for day in &days {
        let start = beijing
            .from_local_datetime(&day.and_hms_opt(0, 0, 0).context("midnight")?)
            .single()
            .context("a Beijing midnight")?
            .with_timezone(&Utc);
        let end = start + chrono::Duration::days(1);
        for i in payment_intent::Entity::find()
            .filter(payment_intent::Column::Channel.eq(channel))
            .filter(payment_intent::Column::Status.eq(payment_intent::Status::Paid))
            .filter(payment_intent::Column::PaidAt.gte(start))
            .filter(payment_intent::Column::PaidAt.lt(end))
            .all(db)
            .await?
        {
            if !in_bill.contains(&i.id) {
                report.paid_here_only.push(ours(&i));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wechat_bill_reads_its_payments_and_stops_at_the_summary() {
        let bill = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\n\
`2026-12-02 10:00:00,`wx8888,`1900000001,`0,`,`4200000001,`0123456789abcdef0123456789abcdef,`oUser,`JSAPI,`SUCCESS,`OTHERS,`CNY,`88.80,`0.00,`0,`0,`0.00,`0.00,`,`,`商品, 逗号,`,`0.53000,`0.60%,`88.80,`0.00,`\n\
`2026-12-02 11:00:00,`wx8888,`1900000001,`0,`,`4200000002,`0123456789abcdef0123456789abcdee,`oUser,`JSAPI,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50000,`R1,`10.00,`0.00,`ORIGINAL,`SUCCESS,`商品,`,`-0.06000,`0.60%,`0.00,`10.00,`\n\
总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n\
`2,`88.80,`10.00,`0.00,`0.47000,`88.80,`10.00\n";
        let b = parse_wechat(bill.as_bytes()).unwrap();
        assert_eq!(b.other_rows, 1);
        assert_eq!(b.payments.len(), 1);
        assert_eq!(b.payments[0].reference, "4200000001");
        assert_eq!(b.payments[0].amount, Decimal::new(8880, 2));
        assert_eq!(b.payments[0].at.unwrap().to_string(), "2026-12-02 10:00:00");
    }

    #[test]
    fn an_alipay_bill_in_gbk_skips_its_comments() {
        let text = "#支付宝业务明细查询\n#账号：[20880000000000010156]\n#起始日期：[2026年12月02日 00:00:00]   终止日期：[2026年12月03日 00:00:00]\n#-----------------------------------------业务明细列表----------------------------------------\n\
支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\n\
2026120222001404011000000001\t,0123456789abcdef0123456789abcdef\t,交易\t,测试商品\t,2026-12-02 09:59:00\t,2026-12-02 10:00:00\t,\t,\t,\t,\t,张*(zha***@example.com)\t,88.80\t,88.80\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,\t,-0.53\t,0.00\t,\t\n\
#-----------------------------------------业务明细列表结束------------------------------------\n#交易合计：1笔，商家实收共88.80元，商家优惠共0.00元\n#导出时间：[2026年12月03日 09:00:00]\n";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert!(std::str::from_utf8(&gbk).is_err(), "really GBK");
        let b = parse_alipay(&gbk).unwrap();
        assert_eq!(b.payments.len(), 1);
        assert_eq!(b.payments[0].reference, "2026120222001404011000000001");
        assert_eq!(b.payments[0].amount, Decimal::new(8880, 2));
        assert_eq!(
            parse_alipay(text.as_bytes()).unwrap(),
            b,
            "UTF-8 reads alike"
        );
    }
}
