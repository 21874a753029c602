//! `has_table_privilege()` and its kin, answered for the connection's role: a client that asks
//! before it shows a table (DBeaver, pgAdmin, Metabase's sync) is told the truth. SELECT on a
//! table the role sees, USAGE on a schema it sees a table of, CONNECT on the database; nothing
//! that writes, creates or grants, ever. datafusion-pg-catalog's own versions say yes to all.
//!
//! The two-argument form asks of the connected user; the three-argument form's user name is
//! answered with the connection's role too (a connection knows only its own).

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

/// Schemas every role reads: the catalog's.
const CATALOG_SCHEMAS: [&str; 2] = ["pg_catalog", "information_schema"];

/// What a privilege function is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Object {
    Table,
    AnyColumn,
    Schema,
    Database,
}

/// One of the functions, for one role's tables.
#[derive(Debug, PartialEq, Eq, Hash)]
struct HasPrivilege {
    name: &'static str,
    object: Object,
    /// The role's tables, as `layer.table`.
    tables: Arc<BTreeSet<String>>,
    signature: Signature,
}

/// The four functions for a role that sees `tables` (`layer.table`).
pub(crate) fn udfs(tables: BTreeSet<String>) -> Vec<ScalarUDF> {
    let tables = Arc::new(tables);
    [
        ("has_table_privilege", Object::Table),
        ("has_any_column_privilege", Object::AnyColumn),
        ("has_schema_privilege", Object::Schema),
        ("has_database_privilege", Object::Database),
    ]
    .into_iter()
    .map(|(name, object)| {
        ScalarUDF::new_from_impl(HasPrivilege {
            name,
            object,
            tables: tables.clone(),
            signature: Signature::one_of(
                vec![TypeSignature::String(2), TypeSignature::String(3)],
                Volatility::Stable,
            ),
        })
    })
    .collect()
}

impl HasPrivilege {
    /// Whether the role holds any of `privileges` (`"SELECT"`, `"select, insert"`, ...) on
    /// `object`; an unknown privilege is an error, as in PostgreSQL.
    fn holds(&self, object: &str, privileges: &str) -> Result<bool> {
        let mut any = false;
        for privilege in privileges.split(',') {
            let privilege = privilege.trim().to_ascii_uppercase();
            let (privilege, grant_option) = match privilege.strip_suffix(" WITH GRANT OPTION") {
                Some(p) => (p.trim_end().to_string(), true),
                None => (privilege, false),
            };
            let reads = match (self.object, privilege.as_str()) {
                (Object::Table | Object::AnyColumn, "SELECT") => true,
                (
                    Object::Table,
                    "INSERT" | "UPDATE" | "DELETE" | "TRUNCATE" | "REFERENCES" | "TRIGGER"
                    | "MAINTAIN",
                )
                | (Object::AnyColumn, "INSERT" | "UPDATE" | "REFERENCES") => false,
                (Object::Schema, "USAGE") => true,
                (Object::Schema, "CREATE") => false,
                (Object::Database, "CONNECT") => true,
                (Object::Database, "CREATE" | "TEMPORARY" | "TEMP") => false,
                _ => return exec_err!("unrecognized privilege type: \"{privilege}\""),
            };
            // Nobody may grant anything here.
            any |= reads && !grant_option && self.sees(object);
        }
        Ok(any)
    }

    fn sees(&self, object: &str) -> bool {
        let name = unquote(object);
        match self.object {
            Object::Database => true,
            Object::Schema => {
                CATALOG_SCHEMAS.contains(&name.as_str())
                    || self
                        .tables
                        .iter()
                        .any(|t| t.split_once('.').is_some_and(|(layer, _)| layer == name))
            }
            Object::Table | Object::AnyColumn => match name.split_once('.') {
                Some((schema, _)) if CATALOG_SCHEMAS.contains(&schema) => true,
                Some(_) => self.tables.contains(&name),
                // Unqualified: any of the role's schemas that has it.
                None => self
                    .tables
                    .iter()
                    .any(|t| t.split_once('.').is_some_and(|(_, table)| table == name)),
            },
        }
    }
}

/// `"Model"."fact"` to `Model.fact`; unquoted parts fold to lower case, as in PostgreSQL.
fn unquote(name: &str) -> String {
    name.trim()
        .split('.')
        .map(
            |part| match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => part.to_ascii_lowercase(),
            },
        )
        .collect::<Vec<_>>()
        .join(".")
}

impl ScalarUDFImpl for HasPrivilege {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| {
                a.to_array(rows)
                    .and_then(|a| Ok(cast(&a, &DataType::Utf8)?))
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        // The last two arguments are the object and the privilege; a user name before them
        // is answered with this connection's role.
        let [.., objects, privileges] = arrays.as_slice() else {
            return exec_err!(
                "{} takes (object, privilege) or (user, object, privilege)",
                self.name
            );
        };
        let objects = objects
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>();
        let privileges = privileges
            .as_any()
            .downcast_ref::<datafusion::arrow::array::StringArray>();
        let (Some(objects), Some(privileges)) = (objects, privileges) else {
            return exec_err!("{}: arguments must be text", self.name);
        };
        let mut out = BooleanBuilder::with_capacity(rows);
        for i in 0..rows {
            if objects.is_null(i) || privileges.is_null(i) {
                out.append_null();
            } else {
                out.append_value(self.holds(objects.value(i), privileges.value(i))?);
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(object: Object) -> HasPrivilege {
        let tables = ["model.fact_user_events", "model.mart_hourly"]
            .map(String::from)
            .into_iter()
            .collect();
        HasPrivilege {
            name: "f",
            object,
            tables: Arc::new(tables),
            signature: Signature::variadic_any(Volatility::Stable),
        }
    }

    #[test]
    fn a_role_reads_its_tables_and_nothing_writes() {
        let table = function(Object::Table);
        assert!(table.holds("model.fact_user_events", "SELECT").unwrap());
        assert!(table.holds("\"model\".\"mart_hourly\"", "select").unwrap());
        assert!(table.holds("MODEL.FACT_USER_EVENTS", "SELECT").unwrap());
        assert!(table.holds("fact_user_events", "SELECT").unwrap());
        assert!(table.holds("pg_catalog.pg_class", "SELECT").unwrap());
        assert!(!table.holds("raw.events", "SELECT").unwrap());
        assert!(!table.holds("events", "SELECT").unwrap());
        assert!(!table.holds("model.fact_user_events", "INSERT").unwrap());
        assert!(
            table
                .holds("model.fact_user_events", "INSERT, SELECT")
                .unwrap()
        );
        assert!(
            !table
                .holds("model.fact_user_events", "SELECT WITH GRANT OPTION")
                .unwrap()
        );
        let e = table.holds("model.fact_user_events", "READ").unwrap_err();
        assert!(e.to_string().contains("unrecognized privilege type"), "{e}");

        let schema = function(Object::Schema);
        assert!(schema.holds("model", "USAGE").unwrap());
        assert!(schema.holds("information_schema", "USAGE").unwrap());
        assert!(!schema.holds("raw", "USAGE").unwrap());
        assert!(!schema.holds("model", "CREATE").unwrap());

        let database = function(Object::Database);
        assert!(database.holds("lake", "CONNECT").unwrap());
        assert!(!database.holds("lake", "TEMP").unwrap());
    }
}
