//! Opaque global IDs for the Relay `Node` interface: base64url of `Type:uuid`.
//!
//! Clients must treat them as opaque strings; the server can tell from one ID alone which
//! table to look in and which type to answer with, so `node(id:)` needs no type argument.
//!
//! Every ID is unique across types (Relay's contract: one ID, one object). A member has two
//! views, the private `Member` and the public `MemberProfile`, and so two IDs over the same
//! row: `Member:uuid` and `MemberProfile:uuid`. Until #25 the profile answered with the
//! member's ID; such an old profile ID now reads as a `Member` ID, which `node(id:)` answers
//! only to the member itself and admins (anyone else gets `NOT_FOUND`). Arguments that name a
//! member (`memberId`, `uplineId`, `actorId`) take either ID ([`decode_member`]).

use async_graphql::ID;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::Error;

/// The node types that have global IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Product,
    Sku,
    Brand,
    Category,
    Merchant,
    Member,
    /// The public view of a member (its own IDs since #25: see the module's documentation).
    MemberProfile,
    Order,
    OrderLine,
    Earning,
    Withdrawal,
    Address,
    Shipment,
    CartLine,
    /// A 种草 note.
    Note,
    CouponTemplate,
    Coupon,
    WebhookEndpoint,
    WebhookDelivery,
    /// A push-hand level.
    Level,
    PrivilegeRule,
    /// A privilege granted to a member (a prize's entitlement too).
    Privilege,
    /// An uploaded product or note image.
    Image,
    /// A presigned image upload under way.
    ImageUpload,
}

impl Kind {
    const ALL: [Kind; 24] = [
        Kind::Product,
        Kind::Sku,
        Kind::Brand,
        Kind::Category,
        Kind::Merchant,
        Kind::Member,
        Kind::MemberProfile,
        Kind::Order,
        Kind::OrderLine,
        Kind::Earning,
        Kind::Withdrawal,
        Kind::Address,
        Kind::Shipment,
        Kind::CartLine,
        Kind::Note,
        Kind::CouponTemplate,
        Kind::Coupon,
        Kind::WebhookEndpoint,
        Kind::WebhookDelivery,
        Kind::Level,
        Kind::PrivilegeRule,
        Kind::Privilege,
        Kind::Image,
        Kind::ImageUpload,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Product => "Product",
            Kind::Sku => "Sku",
            Kind::Brand => "Brand",
            Kind::Category => "Category",
            Kind::Merchant => "Merchant",
            Kind::Member => "Member",
            Kind::MemberProfile => "MemberProfile",
            Kind::Order => "Order",
            Kind::OrderLine => "OrderLine",
            Kind::Earning => "Earning",
            Kind::Withdrawal => "Withdrawal",
            Kind::Address => "Address",
            Kind::Shipment => "Shipment",
            Kind::CartLine => "CartLine",
            Kind::Note => "Note",
            Kind::CouponTemplate => "CouponTemplate",
            Kind::Coupon => "Coupon",
            Kind::WebhookEndpoint => "WebhookEndpoint",
            Kind::WebhookDelivery => "WebhookDelivery",
            Kind::Level => "Level",
            Kind::PrivilegeRule => "PrivilegeRule",
            Kind::Privilege => "Privilege",
            Kind::Image => "Image",
            Kind::ImageUpload => "ImageUpload",
        }
    }
}

/// The global ID of row `id` of type `kind`, as a field's value: the `ID` scalar to
/// async-graphql, written straight into the text by a plain answer
/// ([`crate::graphql::transport::plain::PlainValue`]) without a `String` of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalId(pub Kind, pub Uuid);

/// The ID's text (what `Node.id` answers through the interface).
impl std::fmt::Display for GlobalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&encode(self.0, self.1))
    }
}

impl async_graphql::OutputType for GlobalId {
    fn type_name() -> std::borrow::Cow<'static, str> {
        <ID as async_graphql::OutputType>::type_name()
    }

    fn create_type_info(registry: &mut async_graphql::registry::Registry) -> String {
        <ID as async_graphql::OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        _: &async_graphql::ContextSelectionSet<'_>,
        _: &async_graphql::Positioned<async_graphql::parser::types::Field>,
    ) -> async_graphql::ServerResult<async_graphql::Value> {
        Ok(async_graphql::Value::String(encode(self.0, self.1).0))
    }
}

/// The global ID of row `id` of type `kind`.
pub fn encode(kind: Kind, id: Uuid) -> ID {
    let mut text = Vec::with_capacity(64);
    encode_to(kind, id, &mut text);
    // Only base64's URL-safe alphabet was written.
    ID(String::from_utf8(text).unwrap_or_default())
}

/// Appends the ID of `id` as [`encode`] makes it (base64's URL-safe alphabet only, so it
/// needs no escaping in JSON).
pub fn encode_to(kind: Kind, id: Uuid, out: &mut Vec<u8>) {
    // `Type:uuid` is assembled on the stack: a page of products encodes hundreds of IDs,
    // and `format!` cost more than the base64 itself.
    let name = kind.name().as_bytes();
    // The longest type name is 15 bytes (`WebhookEndpoint`); Kind::ALL's round trip in the
    // tests covers them all.
    let mut text = [0u8; 64];
    let len = name.len() + 1 + uuid::fmt::Simple::LENGTH;
    text[..name.len()].copy_from_slice(name);
    text[name.len()] = b':';
    id.simple().encode_lower(&mut text[name.len() + 1..len]);
    let start = out.len();
    out.resize(start + len.div_ceil(3) * 4, 0);
    let written = URL_SAFE_NO_PAD
        .encode_slice(&text[..len], &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
}

/// Splits a global ID into its type and row id; anything malformed is `VALIDATION` on `field`.
pub fn decode(id: &str, field: &'static str) -> Result<(Kind, Uuid), Error> {
    let bad = || Error::validation(field, "not a valid ID");
    let bytes = URL_SAFE_NO_PAD.decode(id.trim()).map_err(|_| bad())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
    let (name, raw) = text.split_once(':').ok_or_else(bad)?;
    let kind = Kind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(bad)?;
    let uuid = Uuid::try_parse(raw).map_err(|_| bad())?;
    Ok((kind, uuid))
}

/// Decodes an ID that must be of type `kind` (e.g. `product(id:)` given a brand's ID is a
/// `VALIDATION` error, not a silent miss).
pub fn decode_as(id: &str, kind: Kind, field: &'static str) -> Result<Uuid, Error> {
    match decode(id, field)? {
        (k, uuid) if k == kind => Ok(uuid),
        _ => Err(Error::validation(
            field,
            format!("expected the ID of a {}", kind.name()),
        )),
    }
}

/// The row id of a member named by either of its IDs, the private `Member`'s or the public
/// `MemberProfile`'s (an admin acting on a team member holds the latter); any other type is
/// `VALIDATION` on `field`.
pub fn decode_member(id: &str, field: &'static str) -> Result<Uuid, Error> {
    match decode(id, field)? {
        (Kind::Member | Kind::MemberProfile, uuid) => Ok(uuid),
        _ => Err(Error::validation(
            field,
            "expected the ID of a Member or a MemberProfile",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_type_check() {
        let id = Uuid::now_v7();
        let gid = encode(Kind::Brand, id);
        assert_eq!(decode(&gid, "id").ok(), Some((Kind::Brand, id)));
        assert!(decode_as(&gid, Kind::Product, "id").is_err());
        assert!(decode("not base64!", "id").is_err());
        assert!(decode(&URL_SAFE_NO_PAD.encode("Order:xyz"), "id").is_err());
        // A member's two views have two IDs; member arguments take both.
        assert_ne!(encode(Kind::Member, id), encode(Kind::MemberProfile, id));
        assert_eq!(
            decode_member(&encode(Kind::MemberProfile, id), "m").ok(),
            Some(id)
        );
        assert_eq!(decode_member(&encode(Kind::Member, id), "m").ok(), Some(id));
        assert!(decode_member(&encode(Kind::Order, id), "m").is_err());
        // The wire format is base64url of `Type:uuid` (simple form), for every type: IDs
        // clients hold must keep decoding.
        for kind in Kind::ALL {
            let text = format!("{}:{}", kind.name(), id.simple());
            assert_eq!(encode(kind, id).0, URL_SAFE_NO_PAD.encode(text));
        }
    }
}
