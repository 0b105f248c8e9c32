//! Addresses and regions in GraphQL: `me.addresses`, `addAddress`, `updateAddress`,
//! `removeAddress`, `setDefaultAddress`, and the anonymous `regions(parentCode)` an address
//! picker walks. The rules live in [`crate::service::addresses`] and
//! [`crate::service::regions`].

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::address;

use crate::error::Error;
use crate::graphql::context::{state, viewer};
use crate::graphql::ids::{self, Kind};
use crate::service::addresses::{self as svc, AddressInput as Input};
use crate::service::regions::{self, Level};

/// The level of a region.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum RegionLevel {
    /// 省级: a province, autonomous region or municipality (北京市).
    Province,
    /// 地级: a city, prefecture or league; in a municipality the data's 市辖区 (or 重庆's 县),
    /// in a province the grouping 省直辖县级行政区划 of county-level cities it governs itself.
    City,
    /// 县级: a district, county, county-level city or banner.
    District,
}

impl From<Level> for RegionLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Province => RegionLevel::Province,
            Level::City => RegionLevel::City,
            Level::District => RegionLevel::District,
        }
    }
}

/// A region of mainland China: a province, a city or a district, with its six-digit
/// administrative division code (GB/T 2260, as the National Bureau of Statistics' 2023 list
/// has it) and Chinese name.
#[derive(SimpleObject, Clone)]
pub struct Region {
    /// Six digits, e.g. `110101`.
    pub code: String,
    /// Chinese name, e.g. 东城区.
    pub name: String,
    /// Province, city or district.
    pub level: RegionLevel,
    /// The code of the region it is in (a district's city, a city's province); null for a
    /// province.
    pub parent_code: Option<String>,
}

impl Region {
    pub(crate) fn of(r: &regions::Region) -> Region {
        Region {
            code: r.code.to_owned(),
            name: r.name.to_owned(),
            level: r.level.into(),
            parent_code: r.parent().map(|p| p.code.to_owned()),
        }
    }

    pub(crate) fn stored(
        code: &str,
        name: &str,
        level: RegionLevel,
        parent: Option<&str>,
    ) -> Region {
        Region {
            code: code.to_owned(),
            name: name.to_owned(),
            level,
            parent_code: parent.map(str::to_owned),
        }
    }
}

/// A delivery address (收货地址) of the signed-in member.
pub struct Address(pub address::Model);

/// A delivery address (收货地址). Only its member sees it (`NOT_FOUND` for anyone else,
/// through `node(id:)` too). The regions are the codes and names the address was saved with.
#[Object]
impl Address {
    /// Opaque global ID.
    pub async fn id(&self) -> ID {
        ids::encode(Kind::Address, self.0.id)
    }
    /// The person who receives the parcel.
    async fn recipient_name(&self) -> &str {
        &self.0.recipient_name
    }
    /// A mainland mobile number in E.164, e.g. +8613812345678.
    async fn phone(&self) -> &str {
        &self.0.phone
    }
    /// The province (a municipality such as 北京市 is one).
    async fn province(&self) -> Region {
        Region::stored(
            &self.0.province_code,
            &self.0.province_name,
            RegionLevel::Province,
            None,
        )
    }
    /// The city, inside the province (in a municipality the data's 市辖区 or 县).
    async fn city(&self) -> Region {
        Region::stored(
            &self.0.city_code,
            &self.0.city_name,
            RegionLevel::City,
            Some(&self.0.province_code),
        )
    }
    /// The district, inside the city.
    async fn district(&self) -> Region {
        Region::stored(
            &self.0.district_code,
            &self.0.district_name,
            RegionLevel::District,
            Some(&self.0.city_code),
        )
    }
    /// Province, city and district as people write them, without the data's grouping names
    /// (市辖区, 县, 省直辖县级行政区划) and without a name twice: 北京市东城区, 广东省东莞市.
    async fn region_text(&self) -> String {
        regions::text_of(
            &self.0.province_name,
            &self.0.city_name,
            &self.0.district_name,
        )
    }
    /// Street, building, unit and room (2 to 120 characters).
    async fn detail(&self) -> &str {
        &self.0.detail
    }
    /// Six digits, if given.
    async fn postal_code(&self) -> Option<&str> {
        self.0.postal_code.as_deref()
    }
    /// Whether this is the member's default address. A member with addresses has exactly
    /// one.
    async fn is_default(&self) -> bool {
        self.0.is_default
    }
    /// When the address was added.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When the address was last changed (an edit, or becoming or ceasing to be the default).
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// An address as `addAddress` and `updateAddress` take it. Every bad field is reported in
/// one `VALIDATION` error: `extensions.fields` lists each (`input.phone`, `input.cityCode`,
/// …) with its message, `extensions.field` names the first.
#[derive(InputObject)]
pub struct AddressInput {
    /// 1 to 32 characters; no control, bidirectional or zero-width characters.
    pub recipient_name: String,
    /// A mainland China mobile number: 11 digits starting 13 to 19, optionally after +86
    /// (or 0086), with spaces or dashes anywhere: `+86 138-1234-5678`. Stored and answered
    /// in E.164 (`+8613812345678`).
    pub phone: String,
    /// Six-digit province code from `regions` (`110000`).
    pub province_code: String,
    /// Six-digit city code: a city of the province (`110100`, 北京's 市辖区).
    pub city_code: String,
    /// Six-digit district code: a district of the city (`110101`).
    pub district_code: String,
    /// Street, building, unit and room: 2 to 120 characters, one line.
    pub detail: String,
    /// Six digits; null or blank for none.
    pub postal_code: Option<String>,
    /// `true` makes this the default address (the previous default stops being one).
    /// `false` or null leaves the default where it is: the first address is always the
    /// default, and a default stops being one only when another becomes the default.
    pub is_default: Option<bool>,
}

impl From<AddressInput> for Input {
    fn from(i: AddressInput) -> Input {
        Input {
            recipient_name: i.recipient_name,
            phone: i.phone,
            province_code: i.province_code,
            city_code: i.city_code,
            district_code: i.district_code,
            detail: i.detail,
            postal_code: i.postal_code,
            is_default: i.is_default,
        }
    }
}

/// The member's addresses (`me.addresses`): only the member itself reads them.
pub(crate) async fn addresses_of(ctx: &Context<'_>, member_id: uuid::Uuid) -> Result<Vec<Address>> {
    let me = viewer(ctx)?.member()?;
    if me.id != member_id {
        return Err(Error::Forbidden("only the member itself reads its addresses".into()).into());
    }
    Ok(svc::list(&state(ctx)?.db, member_id)
        .await?
        .into_iter()
        .map(Address)
        .collect())
}

/// The viewer's address `id` for `node(id:)`: `NOT_FOUND` for anyone else's.
pub(crate) async fn address_node(ctx: &Context<'_>, id: uuid::Uuid) -> Result<address::Model> {
    let Ok(me) = viewer(ctx)?.member() else {
        return Err(Error::not_found("address").into());
    };
    Ok(svc::get(&state(ctx)?.db, me.id, id).await?)
}

fn address_id(id: &ID) -> Result<uuid::Uuid, Error> {
    ids::decode_as(id, Kind::Address, "id")
}

#[derive(Default)]
pub struct AddressesQuery;

#[Object]
impl AddressesQuery {
    /// The regions of mainland China, for an address picker: the 31 provinces without
    /// `parentCode`, a province's cities, a city's districts (by code); empty under a
    /// district. Anyone may ask, signed in or not; the list is built into the server and
    /// changes only with a new release. A `parentCode` that is not six digits is
    /// `VALIDATION`, one that is not in the list `NOT_FOUND`.
    ///
    /// The data's own tree is kept: a municipality's one city is 市辖区 (北京市 `110000` →
    /// 市辖区 `110100` → 东城区 `110101`; 重庆 also has 县 `500200`), county-level cities a
    /// province governs itself sit under 省直辖县级行政区划 (`419000`, `429000`, `469000`;
    /// 新疆's `659000` 自治区直辖县级行政区划), and a city without districts (东莞 `441900`)
    /// lists itself as its one district.
    async fn regions(
        &self,
        #[graphql(
            desc = "The six-digit code of a province or city whose regions to list; \
                          omit for the provinces. Not six digits: `VALIDATION`; unknown: \
                          `NOT_FOUND`."
        )]
        parent_code: Option<String>,
    ) -> Result<Vec<Region>> {
        Ok(regions::children_of(parent_code.as_deref(), "parentCode")?
            .into_iter()
            .map(Region::of)
            .collect())
    }
}

#[derive(Default)]
pub struct AddressesMutation;

#[Object]
impl AddressesMutation {
    /// Adds a delivery address for the signed-in member. The member's first address becomes
    /// the default, as does one with `isDefault: true`. At most 20 per member
    /// (`ADDRESS_LIMIT_REACHED`).
    async fn add_address(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The address; every bad field is reported at once.")] input: AddressInput,
    ) -> Result<Address> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let row = svc::add(&st.db, &st.events, me.id, &input.into(), st.clock.now()).await?;
        Ok(Address(row))
    }

    /// Replaces every field of one of the member's addresses (a null postal code clears it).
    /// Another member's address is `NOT_FOUND`.
    async fn update_address(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of the member's `Address` IDs.")] id: ID,
        #[graphql(desc = "The whole address as it is to read from now on.")] input: AddressInput,
    ) -> Result<Address> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let id = address_id(&id)?;
        let row = svc::update(&st.db, &st.events, me.id, id, &input.into(), st.clock.now()).await?;
        Ok(Address(row))
    }

    /// Removes one of the member's addresses and answers the addresses left (default first,
    /// then newest first). Removing the default makes the newest remaining address the
    /// default. Another member's address is `NOT_FOUND`.
    async fn remove_address(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of the member's `Address` IDs.")] id: ID,
    ) -> Result<Vec<Address>> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let id = address_id(&id)?;
        let left = svc::remove(&st.db, &st.events, me.id, id, st.clock.now()).await?;
        Ok(left.into_iter().map(Address).collect())
    }

    /// Makes one of the member's addresses the default; the previous default stops being
    /// one. Another member's address is `NOT_FOUND`.
    async fn set_default_address(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "One of the member's `Address` IDs.")] id: ID,
    ) -> Result<Address> {
        let st = state(ctx)?;
        let me = viewer(ctx)?.member()?;
        let id = address_id(&id)?;
        let row = svc::set_default(&st.db, &st.events, me.id, id, st.clock.now()).await?;
        Ok(Address(row))
    }
}
