//! Pre-validation guard: one memoised walk over a parsed document that refuses hostile shapes (fragment bombs, alias floods, huge selections) before async-graphql's own validation, which expands fragments without memoisation.
//!
//! async-graphql 7.2 validates synchronously and re-expands a fragment every time it is
//! spread, so a document of `n` fragments that each spread the previous one twice costs
//! `2^n` work — seconds of CPU for a query under 1 KB, with depth and complexity limits on.
//! [`check`] measures the same expansion in time linear in the document's size:
//!
//! - every selection set (of each operation and each fragment definition) is flattened once
//!   into its own fields, aliases and root-level fields plus the list of fragment spreads
//!   found anywhere inside it; the expanded figures are additive, so nesting no longer
//!   matters after that;
//! - the fragment figures are then resolved by a depth-first walk over the spread graph that
//!   memoises each fragment's result, so a fragment is expanded once however often it is
//!   spread, and a spread of a fragment still being resolved is a cycle.
//!
//! Both walks use explicit stacks, never recursion, so neither a deep selection nor a long
//! chain of fragments can overflow the (small) stack of an async worker. All arithmetic
//! saturates at `u64::MAX`: a 60-level bomb measures `2^60`, deeper ones `u64::MAX`.
//!
//! Checks run in this order, and the first refusal wins:
//! 1. the number of fragment definitions ([`Refusal::TooManyFragments`]), before any walk,
//!    so a document of 10,000 fragments costs nothing more than counting them;
//! 2. the walk itself, which stops at the first fragment cycle ([`Refusal::FragmentCycle`]);
//! 3. the expanded size of the whole document ([`Refusal::TooLarge`]);
//! 4. the most aliased fields in any one operation ([`Refusal::TooManyAliases`]);
//! 5. the most root fields in any one operation ([`Refusal::TooManyRootFields`]).
//!
//! Directives such as `@skip`/`@include` are ignored: the guard measures the document as
//! written, which is what validation walks. Unknown fragment names count 0 and are left for
//! validation to report.
//!
//! Before any of this, and before the parser (pest, which recurses on every bracket: 1,500
//! nested `[` overflowed a worker's stack and aborted the process), [`scan_text`] bounds the
//! nesting of `[ { (` in the raw text in one linear pass and refuses NUL characters
//! (`QUERY_TOO_DEEP`, `VALIDATION`); [`scan_variables`] and [`scan_json`] do the same for the
//! variables and the request body. After the walk, [`check_introspection`] bounds the depth
//! and the estimated size of introspection, which the data depth limit leaves out.

use std::collections::HashMap;
use std::fmt;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// The limits [`check`] enforces. Every limit is inclusive: a document exactly at a limit
/// passes, one over it is refused.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Expanded field selections in the whole document (default 2,000).
    pub max_selections: u64,
    /// Fragment definitions in the document (default 50).
    pub max_fragments: usize,
    /// Expanded aliased fields in one operation (default 30).
    pub max_aliases: u64,
    /// Fields at the root of one operation, counting those reached through fragment spreads
    /// and inline fragments at the root level, expanded (default 20).
    pub max_root_fields: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_selections: 2_000,
            max_fragments: 50,
            max_aliases: 30,
            max_root_fields: 20,
        }
    }
}

/// Why a document was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The document expands to more field selections than allowed.
    TooLarge { selections: u64, limit: u64 },
    /// The document defines more fragments than allowed.
    TooManyFragments { fragments: usize, limit: usize },
    /// One operation expands to more aliased fields than allowed.
    TooManyAliases { aliases: u64, limit: u64 },
    /// One operation selects more root fields than allowed.
    TooManyRootFields { fields: u64, limit: usize },
    /// A fragment spreads itself, directly or through other fragments.
    FragmentCycle { fragment: String },
    /// The text nests `[`, `{` or `(` deeper than allowed ([`scan_text`]).
    TooDeep { limit: usize },
    /// The variables nest lists and objects deeper than allowed ([`scan_variables`]).
    VariablesTooDeep { limit: usize },
    /// A NUL character (U+0000) in the document or in a variable ([`scan_text`],
    /// [`scan_variables`]): no input may carry one (PostgreSQL text cannot hold it).
    NulCharacter,
    /// Introspection nests deeper than allowed ([`check_introspection`]).
    IntrospectionTooDeep { depth: usize, limit: usize },
    /// Introspection would answer more values than allowed ([`check_introspection`]).
    IntrospectionTooComplex { cost: u64, limit: u64 },
    /// Introspection is off (production default) and the document asks for it.
    IntrospectionDisabled,
}

impl Refusal {
    /// The stable error code for `extensions.code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "QUERY_TOO_LARGE",
            Self::TooManyFragments { .. } => "TOO_MANY_FRAGMENTS",
            Self::TooManyAliases { .. } => "TOO_MANY_ALIASES",
            Self::TooManyRootFields { .. } => "TOO_MANY_ROOT_FIELDS",
            // The same code async-graphql's own validation errors are reported under.
            Self::FragmentCycle { .. } => "GRAPHQL_VALIDATION_FAILED",
            Self::TooDeep { .. } | Self::VariablesTooDeep { .. } => "QUERY_TOO_DEEP",
            Self::NulCharacter => "VALIDATION",
            Self::IntrospectionTooDeep { .. } => "QUERY_TOO_DEEP",
            Self::IntrospectionTooComplex { .. } => "QUERY_TOO_COMPLEX",
            Self::IntrospectionDisabled => "INTROSPECTION_DISABLED",
        }
    }

    /// A human message naming the limit and the measured figure.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::TooLarge { selections, limit } => format!(
                "the query expands to {} field selections (limit {limit})",
                count(*selections)
            ),
            Self::TooManyFragments { fragments, limit } => {
                format!("the document defines {fragments} fragments (limit {limit})")
            }
            Self::TooManyAliases { aliases, limit } => format!(
                "an operation expands to {} aliased fields (limit {limit})",
                count(*aliases)
            ),
            Self::TooManyRootFields { fields, limit } => format!(
                "an operation selects {} root fields once fragments are expanded (limit {limit})",
                count(*fields)
            ),
            Self::FragmentCycle { fragment } => {
                format!("cannot spread fragment \"{fragment}\" within itself (fragment cycle)")
            }
            Self::TooDeep { limit } => {
                format!("the document nests brackets more than {limit} deep")
            }
            Self::VariablesTooDeep { limit } => {
                format!("the variables nest lists and objects more than {limit} deep")
            }
            Self::NulCharacter => "inputs may not contain the NUL character (U+0000)".into(),
            Self::IntrospectionTooDeep { depth, limit } => {
                format!("introspection nests {depth} fields deep (limit {limit})")
            }
            Self::IntrospectionTooComplex { cost, limit } => format!(
                "introspection would answer an estimated {} values (limit {limit})",
                count(*cost)
            ),
            Self::IntrospectionDisabled => "introspection is disabled on this server".into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Refusal {}

/// Renders a measured figure; a saturated one is only a lower bound.
fn count(n: u64) -> String {
    if n == u64::MAX {
        format!("at least {n}")
    } else {
        n.to_string()
    }
}

/// What the walk measured (for logs/metrics and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Measured {
    /// Expanded field selections in the whole document.
    pub selections: u64,
    /// Fragment definitions in the document.
    pub fragments: usize,
    /// The most expanded aliased fields in any one operation.
    pub max_aliases: u64,
    /// The most expanded root fields in any one operation.
    pub max_root_fields: u64,
}

/// Measures `doc` and refuses it if it exceeds `limits`; see the module docs for the order
/// of the checks. Runs in time linear in the size of the document.
///
/// # Errors
///
/// The first [`Refusal`] found.
pub fn check(doc: &ExecutableDocument, limits: &Limits) -> Result<Measured, Refusal> {
    // 1. Count fragments before walking anything.
    let fragments = doc.fragments.len();
    if fragments > limits.max_fragments {
        return Err(Refusal::TooManyFragments {
            fragments,
            limit: limits.max_fragments,
        });
    }

    // 2. Flatten every fragment, then resolve their expanded figures. Sorting by name only
    //    makes the reported cycle member deterministic (HashMap order is random).
    let mut defs: Vec<_> = doc.fragments.iter().collect();
    defs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let index: HashMap<&str, usize> = defs
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    let flat: Vec<Flat<'_>> = defs
        .iter()
        .map(|(_, def)| flatten(&def.node.selection_set.node))
        .collect();
    let costs = resolve_fragments(&flat, &index)?;

    // The operations, resolved against the memoised fragment figures.
    let ops: Vec<Flat<'_>> = doc
        .operations
        .iter()
        .map(|(_, op)| flatten(&op.node.selection_set.node))
        .collect();
    let op_costs: Vec<Cost> = ops.iter().map(|op| op.expand(&index, &costs)).collect();

    // 3. The whole document: every operation, plus every fragment no operation reaches
    //    (validation visits those definitions too).
    let reached = reachable(&ops, &flat, &index);
    let unreached = costs
        .iter()
        .zip(&reached)
        .filter(|(_, reached)| !**reached)
        .map(|(cost, _)| cost.selections);
    let selections = op_costs
        .iter()
        .map(|cost| cost.selections)
        .chain(unreached)
        .fold(0, u64::saturating_add);
    if selections > limits.max_selections {
        return Err(Refusal::TooLarge {
            selections,
            limit: limits.max_selections,
        });
    }

    // 4 and 5. Per operation; the worst operation is reported, so the outcome does not
    //    depend on the order operations are stored in.
    let max_aliases = op_costs.iter().map(|c| c.aliases).max().unwrap_or(0);
    if max_aliases > limits.max_aliases {
        return Err(Refusal::TooManyAliases {
            aliases: max_aliases,
            limit: limits.max_aliases,
        });
    }
    let max_root_fields = op_costs.iter().map(|c| c.root_fields).max().unwrap_or(0);
    if max_root_fields > u64::try_from(limits.max_root_fields).unwrap_or(u64::MAX) {
        return Err(Refusal::TooManyRootFields {
            fields: max_root_fields,
            limit: limits.max_root_fields,
        });
    }

    Ok(Measured {
        selections,
        fragments,
        max_aliases,
        max_root_fields,
    })
}

/// Expanded figures of a selection set.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    /// Field selections.
    selections: u64,
    /// Fields with an alias.
    aliases: u64,
    /// Fields at the root level of the selection set (through inline fragments and spreads
    /// at that level, but not inside fields).
    root_fields: u64,
}

impl Cost {
    /// Adds the figures of a fragment spread; its root fields are root fields here only if
    /// the spread itself sits at the root level.
    fn add_spread(&mut self, fragment: Cost, at_root: bool) {
        self.selections = self.selections.saturating_add(fragment.selections);
        self.aliases = self.aliases.saturating_add(fragment.aliases);
        if at_root {
            self.root_fields = self.root_fields.saturating_add(fragment.root_fields);
        }
    }
}

/// A selection set flattened: the figures of what it contains itself, and the fragment
/// spreads found anywhere inside it (with whether each sits at the root level).
struct Flat<'a> {
    own: Cost,
    spreads: Vec<(&'a str, bool)>,
}

impl Flat<'_> {
    /// The expanded figures, given every fragment's resolved figures.
    fn expand(&self, index: &HashMap<&str, usize>, costs: &[Cost]) -> Cost {
        let mut cost = self.own;
        for &(name, at_root) in &self.spreads {
            // Unknown fragments count 0; validation reports them.
            if let Some(fragment) = index.get(name).and_then(|&i| costs.get(i)) {
                cost.add_spread(*fragment, at_root);
            }
        }
        cost
    }
}

/// Flattens a selection set with an explicit stack (no recursion).
fn flatten(set: &SelectionSet) -> Flat<'_> {
    let mut own = Cost::default();
    let mut spreads = Vec::new();
    let mut stack = vec![(set, true)];
    while let Some((set, at_root)) = stack.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    own.selections = own.selections.saturating_add(1);
                    if field.node.alias.is_some() {
                        own.aliases = own.aliases.saturating_add(1);
                    }
                    if at_root {
                        own.root_fields = own.root_fields.saturating_add(1);
                    }
                    stack.push((&field.node.selection_set.node, false));
                }
                // An inline fragment is transparent: its fields sit where it sits.
                Selection::InlineFragment(inline) => {
                    stack.push((&inline.node.selection_set.node, at_root));
                }
                Selection::FragmentSpread(spread) => {
                    spreads.push((spread.node.fragment_name.node.as_str(), at_root));
                }
            }
        }
    }
    Flat { own, spreads }
}

#[derive(Clone, Copy)]
enum Visit {
    New,
    /// On the current DFS path: spreading it again is a cycle.
    Visiting,
    Done(Cost),
}

/// One fragment being resolved on the DFS stack.
struct Frame {
    fragment: usize,
    /// The next of its spreads to look at.
    next: usize,
    /// Its figures so far.
    cost: Cost,
    /// Whether the spread that led here sits at the root level of the parent fragment.
    at_root_in_parent: bool,
}

/// Resolves the expanded figures of every fragment (indexed like `flat`), each exactly once,
/// with an iterative DFS; refuses the first cycle met.
fn resolve_fragments(
    flat: &[Flat<'_>],
    index: &HashMap<&str, usize>,
) -> Result<Vec<Cost>, Refusal> {
    let mut state = vec![Visit::New; flat.len()];
    let mut stack: Vec<Frame> = Vec::new();
    for (start, start_flat) in flat.iter().enumerate() {
        if !matches!(state[start], Visit::New) {
            continue;
        }
        state[start] = Visit::Visiting;
        stack.push(Frame {
            fragment: start,
            next: 0,
            cost: start_flat.own,
            at_root_in_parent: false,
        });
        while let Some(frame) = stack.last_mut() {
            if let Some(&(name, at_root)) = flat[frame.fragment].spreads.get(frame.next) {
                frame.next += 1;
                let Some(&child) = index.get(name) else {
                    continue; // unknown fragment: counts 0
                };
                match state[child] {
                    Visit::Done(cost) => frame.cost.add_spread(cost, at_root),
                    Visit::Visiting => {
                        return Err(Refusal::FragmentCycle {
                            fragment: name.to_owned(),
                        });
                    }
                    Visit::New => {
                        state[child] = Visit::Visiting;
                        stack.push(Frame {
                            fragment: child,
                            next: 0,
                            cost: flat[child].own,
                            at_root_in_parent: at_root,
                        });
                    }
                }
            } else if let Some(done) = stack.pop() {
                // All spreads resolved: memoise, and add to the fragment that spread it.
                state[done.fragment] = Visit::Done(done.cost);
                if let Some(parent) = stack.last_mut() {
                    parent.cost.add_spread(done.cost, done.at_root_in_parent);
                }
            }
        }
    }
    Ok(state
        .into_iter()
        .map(|visit| match visit {
            Visit::Done(cost) => cost,
            // Unreachable: every fragment was resolved above.
            Visit::New | Visit::Visiting => Cost::default(),
        })
        .collect())
}

/// Which fragments (indexed like `flat`) some operation reaches, directly or transitively.
fn reachable(ops: &[Flat<'_>], flat: &[Flat<'_>], index: &HashMap<&str, usize>) -> Vec<bool> {
    let mut reached = vec![false; flat.len()];
    let mut todo: Vec<usize> = Vec::new();
    let spreads_of_ops = ops.iter().flat_map(|op| &op.spreads);
    for &(name, _) in spreads_of_ops {
        if let Some(&i) = index.get(name)
            && !reached[i]
        {
            reached[i] = true;
            todo.push(i);
        }
    }
    while let Some(fragment) = todo.pop() {
        for &(name, _) in &flat[fragment].spreads {
            if let Some(&i) = index.get(name)
                && !reached[i]
            {
                reached[i] = true;
                todo.push(i);
            }
        }
    }
    reached
}

/// Refuses a document text that nests `[`, `{` or `(` more than `max_nesting` deep, or that
/// holds a NUL character (raw, or escaped as `\u0000` / `\u{0}` in a string). One linear
/// pass over the bytes, before anything recursive (the parser, the response cache's peek)
/// touches the text: a few kilobytes of brackets would otherwise overflow a worker's stack
/// and abort the process. Brackets inside strings, block strings and comments do not count;
/// a text the lexer would reject is left for the parser to report.
///
/// # Errors
///
/// [`Refusal::TooDeep`] or [`Refusal::NulCharacter`], whichever comes first.
pub fn scan_text(text: &str, max_nesting: usize) -> Result<(), Refusal> {
    // Every byte the scan looks at is ASCII, and no byte of a multi-byte UTF-8 sequence is.
    let b = text.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let mut i = 0;
    let mut depth = 0usize;
    while let Some(c) = at(i) {
        match c {
            0 => return Err(Refusal::NulCharacter),
            b'#' => {
                while let Some(c) = at(i) {
                    match c {
                        0 => return Err(Refusal::NulCharacter),
                        b'\n' | b'\r' => break,
                        _ => i += 1,
                    }
                }
                continue;
            }
            b'"' if b[i..].starts_with(b"\"\"\"") => {
                // A block string: no escapes but `\"""`.
                i += 3;
                while let Some(c) = at(i) {
                    if c == 0 {
                        return Err(Refusal::NulCharacter);
                    } else if c == b'\\' && b[i + 1..].starts_with(b"\"\"\"") {
                        i += 4;
                    } else if b[i..].starts_with(b"\"\"\"") {
                        i += 3;
                        break;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'"' => {
                i += 1;
                while let Some(c) = at(i) {
                    match c {
                        0 => return Err(Refusal::NulCharacter),
                        b'\\' => {
                            if escapes_nul(&b[i + 1..]) {
                                return Err(Refusal::NulCharacter);
                            }
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            break;
                        }
                        // An unterminated string: the parser reports it.
                        b'\n' | b'\r' => break,
                        _ => i += 1,
                    }
                }
                continue;
            }
            b'[' | b'{' | b'(' => {
                depth += 1;
                if depth > max_nesting {
                    return Err(Refusal::TooDeep { limit: max_nesting });
                }
            }
            b']' | b'}' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Whether the escape after a backslash (`rest`) is `u0000` or `u{0…}`.
fn escapes_nul(rest: &[u8]) -> bool {
    match rest {
        [b'u', b'{', tail @ ..] => {
            let digits = tail.iter().take_while(|c| c.is_ascii_hexdigit()).count();
            digits > 0
                && tail[..digits].iter().all(|&c| c == b'0')
                && tail.get(digits) == Some(&b'}')
        }
        [b'u', a, b, c, d, ..] => [a, b, c, d].iter().all(|&&x| x == b'0'),
        _ => false,
    }
}

/// Refuses JSON text (a request body) whose arrays and objects nest more than `max_nesting`
/// deep: one linear pass, so that the refusal is a clear `QUERY_TOO_DEEP` rather than a
/// parser error, whatever the depth.
///
/// # Errors
///
/// [`Refusal::VariablesTooDeep`].
pub fn scan_json(body: &[u8], max_nesting: usize) -> Result<(), Refusal> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &c in body {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max_nesting {
                    return Err(Refusal::VariablesTooDeep { limit: max_nesting });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses variables that nest lists and objects more than `max_nesting` deep or hold a NUL
/// character in a string or a key, with an explicit stack (no recursion).
///
/// # Errors
///
/// [`Refusal::VariablesTooDeep`] or [`Refusal::NulCharacter`].
pub fn scan_variables(
    variables: &async_graphql::Variables,
    max_nesting: usize,
) -> Result<(), Refusal> {
    use async_graphql::Value;
    let mut stack: Vec<(&Value, usize)> = Vec::new();
    for (name, value) in variables.iter() {
        if name.contains('\0') {
            return Err(Refusal::NulCharacter);
        }
        stack.push((value, 1));
    }
    while let Some((value, depth)) = stack.pop() {
        match value {
            Value::String(s) if s.contains('\0') => return Err(Refusal::NulCharacter),
            Value::Enum(name) if name.contains('\0') => return Err(Refusal::NulCharacter),
            Value::List(items) => {
                if depth > max_nesting {
                    return Err(Refusal::VariablesTooDeep { limit: max_nesting });
                }
                stack.extend(items.iter().map(|v| (v, depth + 1)));
            }
            Value::Object(fields) => {
                if depth > max_nesting {
                    return Err(Refusal::VariablesTooDeep { limit: max_nesting });
                }
                for (key, v) in fields {
                    if key.contains('\0') {
                        return Err(Refusal::NulCharacter);
                    }
                    stack.push((v, depth + 1));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// How far introspection may go: GraphiQL's own query must pass.
#[derive(Clone, Copy, Debug)]
pub struct IntrospectionLimits {
    /// Whether `__schema` and `__type` may be asked for at all.
    pub enabled: bool,
    /// Deepest field nesting below (and counting) `__schema`/`__type` (GraphiQL's query: 13).
    pub max_depth: usize,
    /// Most values the answer may hold by the estimate of [`check_introspection`].
    pub max_cost: u64,
}

impl Default for IntrospectionLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            max_depth: 16,
            max_cost: 10_000_000,
        }
    }
}

/// The estimated length of an introspection list field: how many items each of its values
/// multiplies what is selected below it by. Generous bounds for this schema (it has about a
/// hundred types), not counts: the estimate only has to separate schema tools' queries from
/// the self-multiplying shapes (`interfaces { possibleTypes { interfaces … } }` grows about
/// elevenfold per level).
fn introspection_fanout(field: &str) -> u64 {
    match field {
        "types" => 200,
        "fields" | "args" | "inputFields" | "enumValues" | "interfaces" | "possibleTypes"
        | "directives" | "locations" => 20,
        _ => 1,
    }
}

/// Bounds introspection (`__schema`, `__type`): off when `limits.enabled` is false, at most
/// `limits.max_depth` fields deep below its root field, and at most `limits.max_cost`
/// estimated values, where each selected field costs the product of the fan-outs
/// ([`introspection_fanout`]) of the list fields above it and itself. The data depth limit
/// leaves introspection out (its shape is fixed by the spec), so this is its bound.
/// Call after [`check`]: fragment cycles are refused and the expansion is bounded, so the
/// walk (an explicit stack) is too.
///
/// # Errors
///
/// [`Refusal::IntrospectionDisabled`], [`Refusal::IntrospectionTooDeep`] or
/// [`Refusal::IntrospectionTooComplex`].
pub fn check_introspection(
    doc: &ExecutableDocument,
    limits: &IntrospectionLimits,
) -> Result<(), Refusal> {
    // (selection set, depth below the introspection root, or None outside, multiplier)
    let mut stack: Vec<(&SelectionSet, Option<usize>, u64)> = doc
        .operations
        .iter()
        .map(|(_, op)| (&op.node.selection_set.node, None, 1))
        .collect();
    let mut cost = 0u64;
    while let Some((set, depth, multiplier)) = stack.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let (depth, multiplier) = match depth {
                        Some(d) => (d + 1, multiplier.saturating_mul(introspection_fanout(name))),
                        None if name == "__schema" || name == "__type" => {
                            if !limits.enabled {
                                return Err(Refusal::IntrospectionDisabled);
                            }
                            (1, 1)
                        }
                        None => {
                            stack.push((&field.node.selection_set.node, None, 1));
                            continue;
                        }
                    };
                    if depth > limits.max_depth {
                        return Err(Refusal::IntrospectionTooDeep {
                            depth,
                            limit: limits.max_depth,
                        });
                    }
                    cost = cost.saturating_add(multiplier);
                    if cost > limits.max_cost {
                        return Err(Refusal::IntrospectionTooComplex {
                            cost,
                            limit: limits.max_cost,
                        });
                    }
                    stack.push((&field.node.selection_set.node, Some(depth), multiplier));
                }
                Selection::InlineFragment(inline) => {
                    stack.push((&inline.node.selection_set.node, depth, multiplier));
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(f) = doc.fragments.get(&spread.node.fragment_name.node) {
                        stack.push((&f.node.selection_set.node, depth, multiplier));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::time::Instant;

    use async_graphql::parser::parse_query;

    use super::*;

    fn doc(query: &str) -> ExecutableDocument {
        parse_query(query).expect("test query parses")
    }

    fn check_default(query: &str) -> Result<Measured, Refusal> {
        check(&doc(query), &Limits::default())
    }

    /// `fragment F0 on Query { __typename }`, each next fragment spreading the previous one
    /// twice, and `query { ...F<levels> }`: `levels + 1` fragments, `2^levels` selections.
    fn bomb(levels: usize) -> String {
        let mut q = String::from("fragment F0 on Query { __typename } ");
        for i in 1..=levels {
            let p = i - 1;
            write!(q, "fragment F{i} on Query {{ ...F{p} ...F{p} }} ").expect("write");
        }
        write!(q, "query {{ ...F{levels} }}").expect("write");
        q
    }

    /// `n` plain fields `f0 f1 ...`.
    fn fields(n: usize) -> String {
        (0..n).map(|i| format!("f{i} ")).collect()
    }

    /// `n` aliased fields `a0: x a1: x ...`.
    fn aliases(n: usize) -> String {
        (0..n).map(|i| format!("a{i}: x ")).collect()
    }

    #[test]
    fn normal_query_measures_exactly() {
        assert_eq!(
            check_default("{ a { b c } d }"),
            Ok(Measured {
                selections: 4,
                fragments: 0,
                max_aliases: 0,
                max_root_fields: 2,
            })
        );
    }

    #[test]
    fn fragments_and_inline_fragments_expand() {
        // Root: a, b (via F), x (via inline), y: 4 root fields; c nested. Aliases: k, m.
        let q = "query { ...F ... on Query { x k: y } } \
                 fragment F on Query { a b { m: c } }";
        assert_eq!(
            check_default(q),
            Ok(Measured {
                selections: 5,
                fragments: 1,
                max_aliases: 2,
                max_root_fields: 4,
            })
        );
    }

    #[test]
    fn bombs_are_too_large() {
        for levels in [16, 24] {
            let started = Instant::now();
            let refusal = check_default(&bomb(levels));
            println!("{levels}-level bomb checked in {:?}", started.elapsed());
            assert_eq!(
                refusal,
                Err(Refusal::TooLarge {
                    selections: 1 << levels,
                    limit: 2_000,
                })
            );
        }
    }

    #[test]
    fn sixty_level_bomb_finishes() {
        let q = bomb(60);
        // 61 fragments: the default limits refuse it before any walk.
        assert_eq!(
            check_default(&q),
            Err(Refusal::TooManyFragments {
                fragments: 61,
                limit: 50,
            })
        );
        // With the fragment limit lifted, the walk must measure 2^60 without taking time.
        let doc = doc(&q);
        let limits = Limits {
            max_fragments: 1_000,
            ..Limits::default()
        };
        let started = Instant::now();
        let refusal = check(&doc, &limits);
        println!("60-level bomb checked in {:?}", started.elapsed());
        assert_eq!(
            refusal,
            Err(Refusal::TooLarge {
                selections: 1 << 60,
                limit: 2_000,
            })
        );
    }

    #[test]
    fn deeper_bombs_saturate() {
        let limits = Limits {
            max_fragments: 1_000,
            ..Limits::default()
        };
        let refusal = check(&doc(&bomb(70)), &limits).expect_err("refused");
        assert_eq!(
            refusal,
            Refusal::TooLarge {
                selections: u64::MAX,
                limit: 2_000,
            }
        );
        assert!(refusal.message().contains("at least 18446744073709551615"));
    }

    #[test]
    fn selection_limit_is_inclusive() {
        // 1 wrapper + 1,999 fields = 2,000 passes; one more is refused.
        let at = format!("{{ w {{ {} }} }}", fields(1_999));
        assert_eq!(check_default(&at).map(|m| m.selections), Ok(2_000));
        let over = format!("{{ w {{ {} }} }}", fields(2_000));
        assert_eq!(
            check_default(&over),
            Err(Refusal::TooLarge {
                selections: 2_001,
                limit: 2_000,
            })
        );
    }

    #[test]
    fn selection_limit_counts_fragments_expanded() {
        // F is 1 + 999 = 1,000; spread twice = 2,000 passes, plus one field is refused.
        let frag = format!("fragment F on Query {{ w {{ {} }} }}", fields(999));
        let at = format!("{{ ...F ...F }} {frag}");
        assert_eq!(check_default(&at).map(|m| m.selections), Ok(2_000));
        let over = format!("{{ ...F ...F z }} {frag}");
        assert_eq!(
            check_default(&over),
            Err(Refusal::TooLarge {
                selections: 2_001,
                limit: 2_000,
            })
        );
    }

    #[test]
    fn unused_fragments_count_on_top_of_operations() {
        // A reached fragment counts through the operation only: 1,500, not 3,000.
        let big = format!("fragment Big on Query {{ w {{ {} }} }}", fields(1_499));
        assert_eq!(
            check_default(&format!("{{ ...Big }} {big}")).map(|m| m.selections),
            Ok(1_500)
        );
        // An unused fragment counts on top of the operation: 1 + 1,500 passes...
        assert_eq!(
            check_default(&format!("{{ a }} {big}")).map(|m| m.selections),
            Ok(1_501)
        );
        // Validation visits every definition: an unused fragment that spreads another
        // unused one counts it again (1 + 1,500 via Outer + 1,500 for Big itself).
        let q = format!("{{ a }} fragment Outer on Query {{ ...Big }} {big}");
        assert_eq!(
            check_default(&q),
            Err(Refusal::TooLarge {
                selections: 3_001,
                limit: 2_000,
            })
        );
        // 1 + 1,000 + 1,000 (two unused copies) is refused.
        let thousand = fields(999);
        let q = format!(
            "{{ a }} fragment U1 on Query {{ w {{ {thousand} }} }} \
             fragment U2 on Query {{ w {{ {thousand} }} }}"
        );
        assert_eq!(
            check_default(&q),
            Err(Refusal::TooLarge {
                selections: 2_001,
                limit: 2_000,
            })
        );
    }

    #[test]
    fn fragment_limit_is_inclusive() {
        let defs = |n: usize| -> String {
            (0..n)
                .map(|i| format!("fragment G{i} on Query {{ __typename }} "))
                .collect()
        };
        let at = check_default(&format!("{{ a }} {}", defs(50)));
        assert_eq!(at.map(|m| m.fragments), Ok(50));
        assert_eq!(
            check_default(&format!("{{ a }} {}", defs(51))),
            Err(Refusal::TooManyFragments {
                fragments: 51,
                limit: 50,
            })
        );
    }

    #[test]
    fn fragment_limit_comes_before_the_walk() {
        // 10,000 fragments forming one long cycle: refused by count, never walked.
        let mut q = String::from("{ ...C0 } ");
        for i in 0..10_000 {
            let next = (i + 1) % 10_000;
            write!(q, "fragment C{i} on Query {{ ...C{next} }} ").expect("write");
        }
        assert_eq!(
            check_default(&q),
            Err(Refusal::TooManyFragments {
                fragments: 10_000,
                limit: 50,
            })
        );
    }

    #[test]
    fn alias_limit_is_inclusive() {
        let at = format!("{{ w {{ {} }} }}", aliases(30));
        assert_eq!(check_default(&at).map(|m| m.max_aliases), Ok(30));
        let over = format!("{{ w {{ {} }} }}", aliases(31));
        assert_eq!(
            check_default(&over),
            Err(Refusal::TooManyAliases {
                aliases: 31,
                limit: 30,
            })
        );
    }

    #[test]
    fn alias_limit_counts_fragments_expanded() {
        let q = |n: usize| {
            format!(
                "{{ w {{ ...A ...A }} }} fragment A on W {{ {} }}",
                aliases(n)
            )
        };
        assert_eq!(check_default(&q(15)).map(|m| m.max_aliases), Ok(30));
        assert_eq!(
            check_default(&q(16)),
            Err(Refusal::TooManyAliases {
                aliases: 32,
                limit: 30,
            })
        );
    }

    #[test]
    fn alias_limit_is_per_operation() {
        let q = format!(
            "query A {{ w {{ {a} }} }} query B {{ w {{ {a} }} }}",
            a = aliases(20)
        );
        assert_eq!(check_default(&q).map(|m| m.max_aliases), Ok(20));
    }

    #[test]
    fn root_field_limit_is_inclusive() {
        assert_eq!(
            check_default(&format!("{{ {} }}", fields(20))).map(|m| m.max_root_fields),
            Ok(20)
        );
        assert_eq!(
            check_default(&format!("{{ {} }}", fields(21))),
            Err(Refusal::TooManyRootFields {
                fields: 21,
                limit: 20,
            })
        );
    }

    #[test]
    fn root_fields_count_root_spreads_and_inline_fragments_only() {
        // Nested fields are not root fields, even through a fragment.
        let nested = format!("{{ w {{ ...R }} }} fragment R on W {{ {} }}", fields(40));
        assert_eq!(check_default(&nested).map(|m| m.max_root_fields), Ok(1));
        // 10 + 10 via a root spread twice + 1 via a root inline fragment = 21.
        let q = format!(
            "{{ ...R ...R ... on Query {{ x }} }} fragment R on Query {{ {} }}",
            fields(10)
        );
        assert_eq!(
            check_default(&q),
            Err(Refusal::TooManyRootFields {
                fields: 21,
                limit: 20,
            })
        );
        // A spread inside a fragment's root level is still at the operation's root.
        let q = format!(
            "{{ ...Outer y }} fragment Outer on Query {{ ...R x }} fragment R on Query {{ {} }}",
            fields(19)
        );
        assert_eq!(
            check_default(&q),
            Err(Refusal::TooManyRootFields {
                fields: 21,
                limit: 20,
            })
        );
    }

    #[test]
    fn cycles_are_refused() {
        let cycle = |fragment: &str| {
            Err(Refusal::FragmentCycle {
                fragment: fragment.to_owned(),
            })
        };
        assert_eq!(
            check_default("{ ...A } fragment A on Query { a ...A }"),
            cycle("A")
        );
        assert_eq!(
            check_default("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
            cycle("A")
        );
        // Through nesting, and in a fragment no operation uses.
        assert_eq!(
            check_default(
                "{ x } fragment A on Query { w { ... on W { ...B } } } fragment B on W { v { ...A } }"
            ),
            cycle("A")
        );
    }

    #[test]
    fn long_fragment_chain_does_not_overflow_the_stack() {
        // A chain of 30,000 fragments, each spreading the next: a recursive walk would
        // overflow the test thread's 2 MiB stack; the explicit stack does not.
        let n = 30_000;
        let mut q = String::from("{ ...C0 } ");
        for i in 0..n {
            if i + 1 < n {
                write!(q, "fragment C{i} on Query {{ ...C{} }} ", i + 1).expect("write");
            } else {
                write!(q, "fragment C{i} on Query {{ leaf }} ").expect("write");
            }
        }
        let limits = Limits {
            max_fragments: n,
            ..Limits::default()
        };
        assert_eq!(
            check(&doc(&q), &limits),
            Ok(Measured {
                selections: 1,
                fragments: n,
                max_aliases: 0,
                max_root_fields: 1,
            })
        );
    }

    #[test]
    fn deepest_selection_the_parser_accepts_passes() {
        // Find the deepest nesting the parser accepts, then check it.
        let nested = |depth: usize| format!("{}x{}", "{ f ".repeat(depth), " }".repeat(depth));
        let depth = (1..200)
            .take_while(|&d| parse_query(nested(d)).is_ok())
            .last()
            .expect("shallow nesting parses");
        let depth_u64 = u64::try_from(depth).expect("small");
        println!("deepest nesting the parser accepts: {depth} selection sets");
        // `depth` selection sets hold `depth` fields `f` plus the leaf `x`.
        assert_eq!(
            check_default(&nested(depth)).map(|m| m.selections),
            Ok(depth_u64 + 1)
        );
    }

    /// The obvious exponential expansion, as a reference for small documents.
    fn naive(doc: &ExecutableDocument, set: &SelectionSet, at_root: bool, out: &mut Cost) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    out.selections += 1;
                    out.aliases += u64::from(field.node.alias.is_some());
                    out.root_fields += u64::from(at_root);
                    naive(doc, &field.node.selection_set.node, false, out);
                }
                Selection::InlineFragment(inline) => {
                    naive(doc, &inline.node.selection_set.node, at_root, out);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(def) = doc.fragments.get(&spread.node.fragment_name.node) {
                        naive(doc, &def.node.selection_set.node, at_root, out);
                    }
                }
            }
        }
    }

    /// Fragment names a selection set reaches, transitively (naively).
    fn naive_reach(doc: &ExecutableDocument, set: &SelectionSet, seen: &mut Vec<String>) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => naive_reach(doc, &field.node.selection_set.node, seen),
                Selection::InlineFragment(inline) => {
                    naive_reach(doc, &inline.node.selection_set.node, seen);
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.to_string();
                    if let Some(def) = doc.fragments.get(name.as_str())
                        && !seen.contains(&name)
                    {
                        seen.push(name);
                        naive_reach(doc, &def.node.selection_set.node, seen);
                    }
                }
            }
        }
    }

    #[test]
    fn memoised_walk_matches_naive_expansion() {
        // Random small documents: fragment i only spreads fragments below i (no cycles),
        // sometimes unknown ones; fields, aliases, nesting and inline fragments mixed.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rand = move |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        fn body(rand: &mut impl FnMut(u64) -> u64, below: u64, depth: u32) -> String {
            let mut s = String::from("{ ");
            for _ in 0..=rand(4) {
                match rand(6) {
                    0 if below > 0 => s += &format!("...F{} ", rand(below)),
                    1 => s += "...Missing ",
                    2 if depth < 3 => {
                        s += &format!("... on Query {} ", body(rand, below, depth + 1))
                    }
                    3 if depth < 3 => s += &format!("w: x {} ", body(rand, below, depth + 1)),
                    4 => s += "k: y ",
                    _ => s += "z ",
                }
            }
            s + "}"
        }
        for _ in 0..300 {
            let n = rand(8) + 1;
            let mut q = String::new();
            for i in 0..n {
                q += &format!("fragment F{i} on Query {} ", body(&mut rand, i, 0));
            }
            let ops = rand(3) + 1;
            for o in 0..ops {
                q += &format!("query O{o} {} ", body(&mut rand, n, 0));
            }
            let doc = doc(&q);

            let mut expected = Measured {
                fragments: doc.fragments.len(),
                ..Measured::default()
            };
            let mut reached = Vec::new();
            for (_, op) in doc.operations.iter() {
                let mut cost = Cost::default();
                naive(&doc, &op.node.selection_set.node, true, &mut cost);
                naive_reach(&doc, &op.node.selection_set.node, &mut reached);
                expected.selections += cost.selections;
                expected.max_aliases = expected.max_aliases.max(cost.aliases);
                expected.max_root_fields = expected.max_root_fields.max(cost.root_fields);
            }
            for (name, def) in &doc.fragments {
                if !reached.iter().any(|r| r == name.as_str()) {
                    let mut cost = Cost::default();
                    naive(&doc, &def.node.selection_set.node, true, &mut cost);
                    expected.selections += cost.selections;
                }
            }
            let unlimited = Limits {
                max_selections: u64::MAX,
                max_fragments: usize::MAX,
                max_aliases: u64::MAX,
                max_root_fields: usize::MAX,
            };
            assert_eq!(check(&doc, &unlimited), Ok(expected), "{q}");
        }
    }

    #[test]
    fn unknown_fragments_count_zero() {
        assert_eq!(
            check_default("{ a ...Missing w { ...AlsoMissing } } fragment F on Query { ...Gone }"),
            Ok(Measured {
                selections: 2,
                fragments: 1,
                max_aliases: 0,
                max_root_fields: 2,
            })
        );
    }

    #[test]
    fn multiple_operations_are_summed() {
        assert_eq!(
            check_default("query A { a b } query B { c { d } } mutation M { e }"),
            Ok(Measured {
                selections: 5,
                fragments: 0,
                max_aliases: 0,
                max_root_fields: 2,
            })
        );
        // Each under the limit, together over it.
        let q = format!(
            "query A {{ w {{ {f} }} }} query B {{ w {{ {f} }} }}",
            f = fields(1_000)
        );
        assert_eq!(
            check_default(&q),
            Err(Refusal::TooLarge {
                selections: 2_002,
                limit: 2_000,
            })
        );
    }

    #[test]
    fn first_refusal_wins() {
        // Too large, too many aliases and too many root fields: size is checked first.
        let q = format!("{{ {} }}", aliases(2_001));
        assert!(matches!(check_default(&q), Err(Refusal::TooLarge { .. })));
        // Too many aliases and root fields: aliases first.
        let q = format!("{{ {} }}", aliases(31));
        assert!(matches!(
            check_default(&q),
            Err(Refusal::TooManyAliases { .. })
        ));
        // A cycle inside an otherwise huge document is reported as a cycle.
        let q = format!("{{ {} }} fragment A on Query {{ ...A }}", fields(3_000));
        assert!(matches!(
            check_default(&q),
            Err(Refusal::FragmentCycle { .. })
        ));
    }

    #[test]
    fn codes_and_messages() {
        let cases = [
            (
                Refusal::TooLarge {
                    selections: 2_001,
                    limit: 2_000,
                },
                "QUERY_TOO_LARGE",
                "the query expands to 2001 field selections (limit 2000)",
            ),
            (
                Refusal::TooManyFragments {
                    fragments: 51,
                    limit: 50,
                },
                "TOO_MANY_FRAGMENTS",
                "the document defines 51 fragments (limit 50)",
            ),
            (
                Refusal::TooManyAliases {
                    aliases: 31,
                    limit: 30,
                },
                "TOO_MANY_ALIASES",
                "an operation expands to 31 aliased fields (limit 30)",
            ),
            (
                Refusal::TooManyRootFields {
                    fields: 21,
                    limit: 20,
                },
                "TOO_MANY_ROOT_FIELDS",
                "an operation selects 21 root fields once fragments are expanded (limit 20)",
            ),
            (
                Refusal::FragmentCycle {
                    fragment: "A".to_owned(),
                },
                "GRAPHQL_VALIDATION_FAILED",
                "cannot spread fragment \"A\" within itself (fragment cycle)",
            ),
        ];
        for (refusal, code, message) in cases {
            assert_eq!(refusal.code(), code);
            assert_eq!(refusal.message(), message);
            assert_eq!(refusal.to_string(), message);
        }
    }

    /// The query GraphiQL sends on load: graphql-js 16's `getIntrospectionQuery()` with its
    /// default options (what GraphiQL 4 asks for unless configured otherwise).
    const INTROSPECTION: &str = include_str!("../../../tests/api/introspection.graphql");

    #[test]
    fn graphiql_introspection_passes() {
        // By hand: TypeRef = 2 + 7 levels * 3 = 23; InputValue = 3 + (1 + 23) = 27;
        // FullType = 3 + 57 (fields) + 28 (inputFields) + 24 (interfaces) + 5 (enumValues)
        // + 24 (possibleTypes) = 141; query = 1 + 6 + (1 + 141) + (1 + 3 + 28) = 181.
        let measured = check_default(INTROSPECTION);
        println!("GraphiQL introspection: {measured:?}");
        assert_eq!(
            measured,
            Ok(Measured {
                selections: 181,
                fragments: 3,
                max_aliases: 0,
                max_root_fields: 1,
            })
        );
    }

    #[test]
    fn graphiql_introspection_with_every_option_passes() {
        // getIntrospectionQuery({ descriptions, specifiedByUrl, directiveIsRepeatable,
        // schemaDescription, inputValueDeprecation }): 181 + 1 (schema description)
        // + 1 (isRepeatable) + 1 (specifiedByURL) + 2 per InputValue use (isDeprecated,
        // deprecationReason; InputValue is used 3 times) = 190.
        let q = INTROSPECTION
            .replace(
                "__schema {\n",
                "__schema {\n            description\n",
            )
            .replace("locations\n", "isRepeatable\n              locations\n")
            .replace(
                "          description\n          fields(includeDeprecated: true)",
                "          description\n          specifiedByURL\n          fields(includeDeprecated: true)",
            )
            .replace("args {", "args(includeDeprecated: true) {")
            .replace("inputFields {", "inputFields(includeDeprecated: true) {")
            .replace(
                "defaultValue\n",
                "defaultValue\n          isDeprecated\n          deprecationReason\n",
            );
        assert_ne!(q, INTROSPECTION);
        let measured = check_default(&q);
        println!("GraphiQL introspection, every option: {measured:?}");
        assert_eq!(measured.map(|m| m.selections), Ok(190));
    }

    /// `open` repeated `n` times around `inner`, closed by `close`.
    fn nest(open: &str, inner: &str, close: &str, n: usize) -> String {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn deep_brackets_are_refused_linearly() {
        for n in [65, 2_000, 100_000] {
            let list = format!("{{ node(id: {}) {{ id }} }}", nest("[", "1", "]", n));
            assert_eq!(scan_text(&list, 64), Err(Refusal::TooDeep { limit: 64 }));
            let object = format!("{{ p(filter: {}) {{ id }} }}", nest("{s: ", "1", "}", n));
            assert_eq!(scan_text(&object, 64), Err(Refusal::TooDeep { limit: 64 }));
            let directive = format!("{{ a @skip(if: {}) }}", nest("[", "true", "]", n));
            assert_eq!(
                scan_text(&directive, 64),
                Err(Refusal::TooDeep { limit: 64 })
            );
        }
        // 64 in all (selection set + arguments + lists) passes.
        let at_limit = format!("{{ node(id: {}) }}", nest("[", "1", "]", 62));
        assert_eq!(scan_text(&at_limit, 64), Ok(()));
        assert_eq!(scan_text(INTROSPECTION, 64), Ok(()));
        // Brackets inside strings, block strings and comments do not count; closers do not
        // go below zero.
        let quoted = format!(
            "{{ a(s: \"{0}\", t: \"\"\"{0}\\\"\"\" {0}\"\"\") # {0}\n }} ]]]]",
            "[".repeat(1_000)
        );
        assert_eq!(scan_text(&quoted, 64), Ok(()));
    }

    #[test]
    fn nul_is_refused_in_text_strings_and_escapes() {
        for q in [
            "{ a(s: \"x\0\") }",
            "{ a\0 }",
            "# \0\n{ a }",
            "{ a(s: \"\"\"\0\"\"\") }",
            r#"{ a(s: "x\u0000y") }"#,
            r#"{ a(s: "\u{0}") }"#,
            r#"{ a(s: "\u{000}") }"#,
        ] {
            assert_eq!(scan_text(q, 64), Err(Refusal::NulCharacter), "{q:?}");
        }
        for q in [
            r#"{ a(s: "\u0001 \u{10} \\u0000") }"#,
            r#"{ a(s: """\u0000""") }"#,
        ] {
            assert_eq!(scan_text(q, 64), Ok(()), "{q:?}");
        }
    }

    #[test]
    fn variables_are_bounded_and_nul_free() {
        let vars = |v: serde_json::Value| async_graphql::Variables::from_json(v);
        let deep =
            serde_json::from_str::<serde_json::Value>(&nest("[", "1", "]", 100)).expect("json");
        assert_eq!(
            scan_variables(&vars(serde_json::json!({ "a": deep })), 64),
            Err(Refusal::VariablesTooDeep { limit: 64 })
        );
        assert_eq!(
            scan_variables(&vars(serde_json::json!({ "a": { "b": ["x\u{0}"] } })), 64),
            Err(Refusal::NulCharacter)
        );
        assert_eq!(
            scan_variables(&vars(serde_json::json!({ "a": { "k\u{0}": 1 } })), 64),
            Err(Refusal::NulCharacter)
        );
        assert_eq!(
            scan_variables(
                &vars(serde_json::json!({ "a": { "b": [1, "x", null] } })),
                64
            ),
            Ok(())
        );
        let body = format!(
            "{{\"query\": \"{{ a }}\", \"variables\": {{\"v\": {}}}}}",
            nest("[", "1", "]", 100_000)
        );
        assert_eq!(
            scan_json(body.as_bytes(), 65),
            Err(Refusal::VariablesTooDeep { limit: 65 })
        );
        assert_eq!(scan_json(br#"{"query": "[[[[[[\"[[[[[["}"#, 2), Ok(()));
    }

    /// `{__schema{types{name interfaces{name possibleTypes{…}}}}}`, `pairs` pairs deep.
    fn introspection_bomb(pairs: usize) -> String {
        format!(
            "{{ __schema {{ types {{ name {} }} }} }}",
            nest("interfaces { name possibleTypes { name ", "", "} }", pairs)
        )
    }

    #[test]
    fn introspection_is_bounded_and_graphiql_passes() {
        let limits = IntrospectionLimits::default();
        assert_eq!(check_introspection(&doc(INTROSPECTION), &limits), Ok(()));
        assert_eq!(
            check_introspection(&doc(&introspection_bomb(1)), &limits),
            Ok(())
        );
        for pairs in [2, 5] {
            let refused = check_introspection(&doc(&introspection_bomb(pairs)), &limits);
            assert!(
                matches!(refused, Err(Refusal::IntrospectionTooComplex { .. })),
                "{pairs}: {refused:?}"
            );
        }
        let of_type = format!(
            "{{ __type(name: \"X\") {{ {} }} }}",
            nest("ofType { ", "name", "}", 20)
        );
        assert!(matches!(
            check_introspection(&doc(&of_type), &limits),
            Err(Refusal::IntrospectionTooDeep { limit: 16, .. })
        ));
        let off = IntrospectionLimits {
            enabled: false,
            ..limits
        };
        assert_eq!(
            check_introspection(&doc("{ __typename a { __typename } }"), &off),
            Ok(())
        );
        assert_eq!(
            check_introspection(
                &doc("query { ...F } fragment F on Query { __type(name: \"A\") { name } }"),
                &off
            ),
            Err(Refusal::IntrospectionDisabled)
        );
    }
}
