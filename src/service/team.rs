//! Team reads: a member's downline one level at a time, and its statistics, both served from
//! the closure table and counters that [`super::hierarchy`] maintains — an index seek and a
//! handful of rows however large the team.

use chrono::{DateTime, Utc};
use entity::{member, member_ancestor, team_counter};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::hierarchy::{MAX_DEPTH, period};
use super::page::Page;
use crate::error::{Error, Result};

/// Position after the last team member of a page: newest first, ties by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamCursor {
    pub level: i16,
    pub since: DateTime<Utc>,
    pub id: Uuid,
}

/// A team member and when they joined the team.
pub struct TeamMember {
    pub member: member::Model,
    pub since: DateTime<Utc>,
}

fn check_level(level: i32) -> Result<i16> {
    i16::try_from(level)
        .ok()
        .filter(|l| (1..=MAX_DEPTH).contains(l))
        .ok_or_else(|| Error::validation("level", format!("must be between 1 and {MAX_DEPTH}")))
}

/// `first` members of `ancestor`'s team at `level`, newest first, after `after`.
pub async fn page(
    db: &impl ConnectionTrait,
    ancestor: Uuid,
    level: i32,
    after: Option<&TeamCursor>,
    first: u64,
) -> Result<Page<TeamMember>> {
    let level = check_level(level)?;
    let mut q = member_ancestor::Entity::find()
        .filter(member_ancestor::Column::AncestorId.eq(ancestor))
        .filter(member_ancestor::Column::Depth.eq(level));
    if let Some(c) = after {
        if c.level != level {
            return Err(Error::validation(
                "after",
                "cursor belongs to another level",
            ));
        }
        q = q.filter(
            Condition::any()
                .add(member_ancestor::Column::Since.lt(c.since))
                .add(
                    Condition::all()
                        .add(member_ancestor::Column::Since.eq(c.since))
                        .add(member_ancestor::Column::DescendantId.lt(c.id)),
                ),
        );
    }
    let q = q
        .order_by_desc(member_ancestor::Column::Since)
        .order_by_desc(member_ancestor::Column::DescendantId);
    let Page {
        items: rows,
        has_next,
    } = Page::of(
        super::page::rows_of_page(db.get_database_backend(), q, first)
            .all(db)
            .await?,
        first,
    );
    let ids: Vec<Uuid> = rows.iter().map(|r| r.descendant_id).collect();
    let mut members: std::collections::HashMap<Uuid, member::Model> = member::Entity::find()
        .filter(super::one_of(db, member::Column::Id, ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let items = rows
        .into_iter()
        .filter_map(|r| {
            members.remove(&r.descendant_id).map(|member| TeamMember {
                member,
                since: r.since,
            })
        })
        .collect();
    Ok(Page { items, has_next })
}

impl TeamCursor {
    pub fn of(level: i32, m: &TeamMember) -> TeamCursor {
        TeamCursor {
            level: level as i16,
            since: m.since,
            id: m.member.id,
        }
    }
}

/// Team size at one level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelStats {
    pub level: i16,
    pub members: i64,
    /// Joined the team in the current calendar month (UTC).
    pub new_this_month: i64,
    /// Paid order amounts (fen) of this level's members this month, net of refunds.
    pub sales_this_month: i64,
}

/// Counts per level 1..=3 (levels with nobody included, as zeros).
pub async fn stats(
    db: &impl ConnectionTrait,
    ancestor: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<LevelStats>> {
    let rows = team_counter::Entity::find()
        .filter(team_counter::Column::AncestorId.eq(ancestor))
        .all(db)
        .await?;
    let this_month = period(now);
    Ok((1..=MAX_DEPTH)
        .map(|level| {
            let at_level = rows.iter().filter(|r| r.depth == level);
            LevelStats {
                level,
                members: at_level.clone().map(|r| r.members).sum(),
                new_this_month: at_level
                    .clone()
                    .filter(|r| r.period == this_month)
                    .map(|r| r.members)
                    .sum(),
                sales_this_month: at_level
                    .filter(|r| r.period == this_month)
                    .map(|r| r.sales)
                    .sum(),
            }
        })
        .collect())
}

/// Whether `ancestor` has `member` in its team (within the closure's depth).
pub async fn in_team(db: &impl ConnectionTrait, ancestor: Uuid, member: Uuid) -> Result<bool> {
    Ok(member_ancestor::Entity::find()
        .filter(member_ancestor::Column::AncestorId.eq(ancestor))
        .filter(member_ancestor::Column::DescendantId.eq(member))
        .one(db)
        .await?
        .is_some())
}
