//! What one request may ask for, checked before anything runs.
//!
//! async-graphql checks depth and complexity by walking the operation with
//! every fragment spread expanded in place, so a small document whose
//! fragments each spread the next twice makes that walk exponential: 1 KB
//! of text can hold a worker thread for minutes. [`measure`] reads the
//! document once, sizing each fragment once and reusing that size wherever
//! it is spread, so its time is proportional to the text; a document whose
//! expanded size is past [`MAX_FIELDS`] is refused before async-graphql
//! expands anything.

use std::collections::HashMap;

use async_graphql::parser::types::{
    ExecutableDocument, Field, FragmentDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, Request, ServerError, ServerResult, Value};

/// Deepest selection accepted: GraphiQL's own introspection query is the
/// deepest anyone needs (its type references nest nine `ofType`s).
pub const MAX_DEPTH: usize = 15;
/// Most expensive operation accepted: every field costs one unless it says
/// otherwise, a page of a list costs its children once per item, and a field
/// that reads a month of calls or a whole rate table costs that work (see
/// [`cost`]).
pub const MAX_COMPLEXITY: usize = 5_000;
/// Most field selections an operation may make, every fragment spread
/// counted as many times as it is spread.
pub const MAX_FIELDS: u64 = 2_000;
/// Longest document accepted; data belongs in variables.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Most directives one field may carry.
pub const MAX_DIRECTIVES: usize = 4;
/// Most errors one response carries; the rest are counted, not listed.
pub const MAX_ERRORS: usize = 20;
/// How deeply introspection's lists (`types`, `fields`, `args`, …) may nest:
/// GraphiQL needs three (a type's fields' arguments), and each level more
/// multiplies the answer by the size of the schema.
pub const MAX_INTROSPECTION_LISTS: u32 = 3;

/// What single fields cost, where the work behind them is more than a value.
pub mod cost {
    /// A month of an account's calls as CSV: a request can ask for one.
    pub const CALLS_CSV: usize = 3_000;
    /// A month's report: grouping every call of the month.
    pub const REPORT: usize = 400;
    /// Anything that goes through a calling plan's whole rate table (up to
    /// 100,000 rates; the table itself is read once and shared).
    pub const RATE_TABLE: usize = 100;
    /// A calling plan's rates written out as CSV (megabytes for a large
    /// plan): a request can ask for two.
    pub const RATE_EXPORT: usize = 2_000;
    /// A PBX's status, asked of the hosting controller.
    pub const CONTROLLER: usize = 25;
    /// The items a list without paging is taken to hold (an account's orders
    /// or PBXs, a catalogue), to multiply its children by.
    pub const UNPAGED_LIST: usize = 20;
}

/// Fields that check or set a password (argon2, on purpose slow): a request
/// may hold one of them.
const PASSWORD_FIELDS: [&str; 4] = [
    "signUp",
    "changePassword",
    "requestEmailChange",
    "resetPassword",
];

/// Introspection fields that return lists.
const INTROSPECTION_LISTS: [&str; 8] = [
    "types",
    "fields",
    "args",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
    "directives",
];

/// The size of a document, every fragment spread expanded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Field selections, saturating.
    pub fields: u64,
    /// The deepest field, counting one per field.
    pub depth: u32,
    /// The deepest nesting of introspection lists.
    pub introspection_lists: u32,
    /// Password-checking fields.
    pub password_fields: u64,
}

impl Shape {
    fn add(self, other: Shape) -> Shape {
        Shape {
            fields: self.fields.saturating_add(other.fields),
            depth: self.depth.max(other.depth),
            introspection_lists: self.introspection_lists.max(other.introspection_lists),
            password_fields: self.password_fields.saturating_add(other.password_fields),
        }
    }
}

/// Why a document is refused before it runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("The operation is too large: send at most {MAX_DOCUMENT_BYTES} bytes of query text, and data in variables.")]
    TooLong,
    #[error("The operation selects too many fields ({0} with its fragments expanded; at most {MAX_FIELDS}).")]
    TooManyFields(u64),
    #[error("Query is nested too deep.")]
    TooDeep,
    #[error("The introspection query nests too many lists (at most {MAX_INTROSPECTION_LISTS}).")]
    IntrospectionTooDeep,
    #[error("Fragment {0} spreads itself.")]
    FragmentCycle(String),
    #[error("A request may check a password once: send one signUp, changePassword, requestEmailChange or resetPassword at a time.")]
    SeveralPasswordChecks,
    #[error("Text may not contain the NUL character (\\u0000){0}.")]
    Nul(String),
}

/// Sizes every operation of `doc` in one pass over its text.
pub fn measure(doc: &ExecutableDocument) -> Result<Shape, Refusal> {
    let mut sizer = Sizer {
        fragments: &doc.fragments,
        known: HashMap::new(),
    };
    let mut total = Shape::default();
    for (_, operation) in doc.operations.iter() {
        let mut shape = sizer.selection_set(&operation.node.selection_set.node)?;
        if operation.node.ty != OperationType::Mutation {
            // Only mutations set a password or check one.
            shape.password_fields = 0;
        }
        total = total.add(shape);
    }
    Ok(total)
}

/// Refuses a document whose shape is past the limits.
pub fn check(shape: Shape) -> Result<(), Refusal> {
    if shape.fields > MAX_FIELDS {
        return Err(Refusal::TooManyFields(shape.fields));
    }
    if shape.depth as usize > MAX_DEPTH {
        return Err(Refusal::TooDeep);
    }
    if shape.introspection_lists > MAX_INTROSPECTION_LISTS {
        return Err(Refusal::IntrospectionTooDeep);
    }
    if shape.password_fields > 1 {
        return Err(Refusal::SeveralPasswordChecks);
    }
    Ok(())
}

enum Known {
    Sizing,
    Sized(Shape),
}

struct Sizer<'a> {
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    known: HashMap<&'a str, Known>,
}

impl<'a> Sizer<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> Result<Shape, Refusal> {
        let mut shape = Shape::default();
        for item in &set.items {
            let part = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    check_text(field)?;
                    let inner = self.selection_set(&field.selection_set.node)?;
                    let name = field.name.node.as_str();
                    Shape {
                        fields: inner.fields.saturating_add(1),
                        depth: inner.depth.saturating_add(1),
                        introspection_lists: inner.introspection_lists
                            + u32::from(INTROSPECTION_LISTS.contains(&name)),
                        password_fields: inner
                            .password_fields
                            .saturating_add(u64::from(PASSWORD_FIELDS.contains(&name))),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(&spread.node.fragment_name.node)?
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node)?
                }
            };
            shape = shape.add(part);
        }
        Ok(shape)
    }

    /// A fragment's shape, sized the first time it is spread.
    fn fragment(&mut self, name: &'a Name) -> Result<Shape, Refusal> {
        match self.known.get(name.as_str()) {
            Some(Known::Sized(shape)) => return Ok(*shape),
            Some(Known::Sizing) => return Err(Refusal::FragmentCycle(name.to_string())),
            None => {}
        }
        // An unknown fragment is async-graphql's to name.
        let Some(definition) = self.fragments.get(name) else {
            return Ok(Shape::default());
        };
        self.known.insert(name.as_str(), Known::Sizing);
        let shape = self.selection_set(&definition.node.selection_set.node)?;
        self.known.insert(name.as_str(), Known::Sized(shape));
        Ok(shape)
    }
}

/// Refuses a NUL anywhere in a field's arguments: PostgreSQL cannot store
/// one, and the person should hear which field holds it.
fn check_text(field: &Field) -> Result<(), Refusal> {
    for (_, value) in &field.arguments {
        let value = value
            .node
            .clone()
            .into_const_with(|_| Ok::<_, ()>(Value::Null));
        if value.is_ok_and(|v| holds_nul(&v)) {
            return Err(Refusal::Nul(format!(
                " (in the arguments of {})",
                field.name.node
            )));
        }
    }
    Ok(())
}

fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::List(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(name, v)| name.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Checks `request` against these limits before the schema sees it (see
/// [`crate::execute`]); the refusal says which limit it passed. Parses the
/// document if it is not parsed yet, and leaves it parsed for the schema.
///
/// A function rather than a schema extension: with any extension in the
/// schema, async-graphql sends every field of every answer through the
/// extensions' chain (a boxed future and a lookup of the field's type in the
/// registry, per field): about two hundredths of the machine in a profile
/// of the client home under load.
pub fn admit(request: &mut Request) -> ServerResult<()> {
    let refuse = |refusal: Refusal| ServerError::new(refusal.to_string(), None);
    if request.query.len() > MAX_DOCUMENT_BYTES {
        return Err(refuse(Refusal::TooLong));
    }
    if holds_nul(&request.variables.clone().into_value()) {
        return Err(refuse(Refusal::Nul(" (in the variables)".into())));
    }
    let shape = measure(request.parsed_query()?).map_err(refuse)?;
    check(shape).map_err(refuse)
}

/// A hostile document: `levels` fragments, each spreading the next twice,
/// about 40 bytes a level that expand to 2^levels selections. What the
/// limits above are measured and tested against.
pub fn fragment_bomb(levels: usize) -> String {
    let mut text = String::from("query { ...F0 }\n");
    for n in 0..levels {
        text.push_str(&format!(
            "fragment F{n} on Query {{ ...F{m} ...F{m} }}\n",
            m = n + 1
        ));
    }
    text.push_str(&format!(
        "fragment F{levels} on Query {{ plans {{ slug }} }}\n"
    ));
    text
}

/// Keeps the first [`MAX_ERRORS`] errors and says how many more there were.
pub fn cap_errors(errors: &mut Vec<ServerError>) {
    if errors.len() > MAX_ERRORS {
        let more = errors.len() - MAX_ERRORS;
        errors.truncate(MAX_ERRORS);
        errors.push(ServerError::new(
            format!("… and {more} more errors like these."),
            None,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> Result<Shape, Refusal> {
        measure(&async_graphql::parser::parse_query(text).expect("parses"))
    }

    #[test]
    fn a_fragment_spread_twice_counts_twice() {
        let measured =
            shape("{ ...A ...A } fragment A on Query { plans { slug name } }").expect("a document");
        assert_eq!(measured.fields, 6);
        assert_eq!(measured.depth, 2);
    }

    #[test]
    fn a_thirty_level_fragment_bomb_is_sized_without_expanding_it() {
        let measured = shape(&fragment_bomb(30)).expect("a document");
        assert_eq!(measured.fields, 2 * (1 << 30));
        assert_eq!(check(measured), Err(Refusal::TooManyFields(2 * (1 << 30))));
    }

    #[test]
    fn a_fragment_that_spreads_itself_is_refused_not_followed() {
        assert_eq!(
            shape("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }"),
            Err(Refusal::FragmentCycle("A".into()))
        );
    }

    #[test]
    fn sign_ups_are_counted_through_aliases_and_fragments() {
        let two = "mutation { a: signUp(input: $i) { userId } ...S } fragment S on Mutation { b: signUp(input: $i) { userId } }";
        assert_eq!(
            check(shape(two).expect("a document")),
            Err(Refusal::SeveralPasswordChecks)
        );
        assert!(
            check(shape("mutation { signUp(input: $i) { userId } }").expect("a document")).is_ok()
        );
    }

    #[test]
    fn a_nul_in_an_argument_is_named() {
        assert!(matches!(
            shape("{ plan(slug: \"a\\u0000b\") { name } }"),
            Err(Refusal::Nul(_))
        ));
    }

    #[test]
    fn more_errors_than_the_cap_are_summed_up_in_one() {
        let mut errors: Vec<ServerError> = (0..500)
            .map(|n| ServerError::new(format!("error {n}"), None))
            .collect();
        cap_errors(&mut errors);
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert!(errors[MAX_ERRORS].message.contains("480 more"));
    }
}
