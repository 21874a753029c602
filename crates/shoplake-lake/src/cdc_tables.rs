//! The change data capture tables: `raw.cdc_<table>`, one per table of the store's PostgreSQL
//! schema (the one `shoplake oltp init` creates), and `meta.cdc_progress`, the log of what
//! `shoplake cdc` landed.
//!
//! A `raw.cdc_*` row is one row image: the table's own columns (typed as in PostgreSQL), then
//! what the change was (`_op`), the commit it belongs to (`_lsn`, `_commit_time`, `_xid`) and
//! its place in that transaction (`_seq`). Tables are append only: the current state of a
//! PostgreSQL row is its image with the highest (`_lsn`, `_seq`), unless that is a delete.

use datafusion::arrow::datatypes::DataType;

use crate::tables::{ColumnDef, EVENT_DATE, TableDef, col, price_type, timestamp_utc};

/// The store's tables, parents before children (the order the snapshot copies them in).
pub const OLTP_TABLES: [&str; 6] = [
    "users",
    "brands",
    "categories",
    "products",
    "sessions",
    "events",
];

/// The change columns every `raw.cdc_*` table ends with, in order.
pub const CHANGE_COLUMNS: [&str; 5] = ["_op", "_lsn", "_commit_time", "_xid", "_seq"];

/// The values of `_op`.
pub const CHANGE_OPS: [&str; 4] = ["snapshot", "insert", "update", "delete"];

fn change_columns() -> Vec<ColumnDef> {
    vec![
        col(
            "_op",
            DataType::Utf8,
            false,
            "What the row image is: `snapshot` (the row as the initial snapshot read it), `insert`, `update` (the new image) or `delete` (the image before the delete).",
            "cdc",
        ),
        col(
            "_lsn",
            DataType::Int64,
            false,
            "Commit LSN of the transaction (for snapshot rows, one below the slot's consistent point: the snapshot holds every commit before that point), as a 64-bit integer: `(hi << 32) | lo` of PostgreSQL's `hi/lo`.",
            "cdc",
        ),
        col(
            "_commit_time",
            timestamp_utc(),
            false,
            "When the transaction committed (for snapshot rows, when the snapshot was taken).",
            "cdc",
        ),
        col(
            "_xid",
            DataType::Int64,
            false,
            "PostgreSQL transaction id; 0 for snapshot rows.",
            "cdc",
        ),
        col(
            "_seq",
            DataType::Int64,
            false,
            "Order of the change within its transaction, from 1 (within the table's snapshot for snapshot rows).",
            "cdc",
        ),
    ]
}

fn image(name: &'static str, data_type: DataType, description: &'static str) -> ColumnDef {
    // Every image column may be null: a delete under REPLICA IDENTITY DEFAULT carries only the key.
    col(
        name,
        data_type,
        true,
        description,
        "PostgreSQL, logical replication",
    )
}

fn cdc_table(
    name: &'static str,
    grain: &'static str,
    description: &'static str,
    mut columns: Vec<ColumnDef>,
) -> TableDef {
    columns.extend(change_columns());
    TableDef {
        layer: "raw",
        name,
        partition_by: None,
        file_per_value_of: None,
        grain,
        description,
        columns,
    }
}

/// `raw.cdc_users`.
pub fn cdc_users() -> TableDef {
    cdc_table(
        "cdc_users",
        "one change to a row of the store's users table",
        "Changes to the store's users (PostgreSQL `users`), from the initial snapshot on.",
        vec![
            image("user_id", DataType::Int64, "User id (key)."),
            image("name", DataType::Utf8, "Display name."),
            image("email", DataType::Utf8, "E-mail address."),
            image(
                "created_at",
                timestamp_utc(),
                "When the account was created.",
            ),
        ],
    )
}

/// `raw.cdc_brands`.
pub fn cdc_brands() -> TableDef {
    cdc_table(
        "cdc_brands",
        "one change to a row of the store's brands table",
        "Changes to the store's brands (PostgreSQL `brands`).",
        vec![
            image("brand_id", DataType::Int64, "Brand id (key)."),
            image("brand_name", DataType::Utf8, "Brand name."),
        ],
    )
}

/// `raw.cdc_categories`.
pub fn cdc_categories() -> TableDef {
    cdc_table(
        "cdc_categories",
        "one change to a row of the store's categories table",
        "Changes to the store's category tree (PostgreSQL `categories`): a leaf has the export's category id, its ancestors are the segments of the dotted code.",
        vec![
            image(
                "category_id",
                DataType::Int64,
                "Category id (key): the export's id on a leaf, a generated one on an inner node.",
            ),
            image(
                "category_name",
                DataType::Utf8,
                "One segment of the dotted code (`smartphone`); null on a leaf whose export row had no code.",
            ),
            image(
                "parent_id",
                DataType::Int64,
                "The parent node; null at a root.",
            ),
        ],
    )
}

/// `raw.cdc_products`.
pub fn cdc_products() -> TableDef {
    cdc_table(
        "cdc_products",
        "one change to a row of the store's products table",
        "Changes to the store's products (PostgreSQL `products`): price, stock, brand and category over time.",
        vec![
            image("product_id", DataType::Int64, "Product id (key)."),
            image("name", DataType::Utf8, "Product name."),
            image("brand_id", DataType::Int64, "Brand; null when unbranded."),
            image("category_id", DataType::Int64, "Leaf category."),
            image("price", price_type(), "Current list price."),
            image("stock", DataType::Int64, "Units in stock."),
        ],
    )
}

/// `raw.cdc_sessions`.
pub fn cdc_sessions() -> TableDef {
    cdc_table(
        "cdc_sessions",
        "one change to a row of the store's sessions table",
        "Changes to the store's sessions (PostgreSQL `sessions`): who, on which device, from which channel.",
        vec![
            image("session_id", DataType::Utf8, "Session UUID (key)."),
            image("user_id", DataType::Int64, "The session's user."),
            image(
                "device_type",
                DataType::Utf8,
                "desktop, mobile, tablet or app.",
            ),
            image(
                "channel",
                DataType::Utf8,
                "Where the visit came from (organic, paid_search, email, social, direct, referral).",
            ),
            image("started_at", timestamp_utc(), "When the session started."),
        ],
    )
}

/// `raw.cdc_events`, partitioned by the event's day.
pub fn cdc_events() -> TableDef {
    let mut def = cdc_table(
        "cdc_events",
        "one change to a row of the store's events table",
        "Changes to the store's events (PostgreSQL `events`), partitioned by the event's day.",
        vec![
            image("event_id", DataType::Int64, "Event id (key)."),
            image("session_id", DataType::Utf8, "The event's session."),
            image(
                "product_id",
                DataType::Int64,
                "The product viewed, carted or bought.",
            ),
            image(
                "event_type",
                DataType::Utf8,
                "view, cart, remove_from_cart or purchase.",
            ),
            image("event_time", timestamp_utc(), "When the event happened."),
            image("price", price_type(), "The price shown at the event."),
        ],
    );
    def.columns.push(col(
        EVENT_DATE,
        DataType::Date32,
        false,
        "UTC day of event_time (of the commit when a delete carries no event_time); the partition column.",
        "cdc",
    ));
    def.partition_by = Some(EVENT_DATE);
    def
}

/// The `raw.cdc_*` table of a store table (`events` -> `raw.cdc_events`).
pub fn cdc_table_of(oltp_table: &str) -> Option<TableDef> {
    match oltp_table {
        "users" => Some(cdc_users()),
        "brands" => Some(cdc_brands()),
        "categories" => Some(cdc_categories()),
        "products" => Some(cdc_products()),
        "sessions" => Some(cdc_sessions()),
        "events" => Some(cdc_events()),
        _ => None,
    }
}

/// The key column of a store table.
pub fn oltp_key(oltp_table: &str) -> Option<&'static str> {
    match oltp_table {
        "users" => Some("user_id"),
        "brands" => Some("brand_id"),
        "categories" => Some("category_id"),
        "products" => Some("product_id"),
        "sessions" => Some("session_id"),
        "events" => Some("event_id"),
        _ => None,
    }
}

/// Every `raw.cdc_*` table, in [`OLTP_TABLES`] order.
pub fn all_cdc() -> Vec<TableDef> {
    OLTP_TABLES.iter().filter_map(|t| cdc_table_of(t)).collect()
}

/// `meta.cdc_progress`: one row per landing of `shoplake cdc`.
pub fn meta_cdc_progress() -> TableDef {
    let n = |name, description| col(name, DataType::Int64, false, description, "cdc");
    TableDef {
        layer: "meta",
        name: "cdc_progress",
        partition_by: None,
        file_per_value_of: None,
        grain: "one landing: the snapshot, or a run of committed transactions",
        description: "What change data capture landed and up to where: the lake holds every change of the slot up to the highest `lsn` (the same commit records it as an application transaction).",
        columns: vec![
            col("slot", DataType::Utf8, false, "Replication slot.", "cdc"),
            col(
                "phase",
                DataType::Utf8,
                false,
                "`snapshot` (the initial copy) or `stream`.",
                "cdc",
            ),
            n(
                "lsn",
                "Every transaction of the slot that committed at or before this LSN is in the raw.cdc_* tables.",
            ),
            col(
                "last_commit_time",
                timestamp_utc(),
                true,
                "Commit time of the last transaction landed (the snapshot's time for the snapshot); null when only heartbeats were seen.",
                "cdc",
            ),
            n("transactions", "Transactions landed by this row."),
            n("changes", "Row images landed by this row."),
            col(
                "landed_at",
                timestamp_utc(),
                false,
                "When the landing committed.",
                "cdc",
            ),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_table_has_its_cdc_table_and_key() {
        for t in OLTP_TABLES {
            let def = cdc_table_of(t).unwrap();
            assert_eq!(def.name, format!("cdc_{t}"));
            let key = oltp_key(t).unwrap();
            assert_eq!(def.columns[0].name, key);
            let names = def.column_names();
            let tail = &names[names.len() - CHANGE_COLUMNS.len() - usize::from(t == "events")..];
            assert_eq!(&tail[..CHANGE_COLUMNS.len()], CHANGE_COLUMNS);
        }
    }
}
