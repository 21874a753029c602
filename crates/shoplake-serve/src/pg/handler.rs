//! Answering statements: the policy first, then the engine, with the connection's limits on
//! time and rows.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::DataFrame;
use datafusion::sql::parser::Statement as EngineStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire;
use futures::{Sink, StreamExt};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, FieldInfo, QueryResponse, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::CopyData;
use pgwire::types::format::FormatOptions;
use shoplake_sql::read_only_sql_options;
use tokio::time::Instant;

use super::cancel::Stop;
use super::policy::{self, Verdict, error};
use super::session::Session;
use super::{ConnectionState, Limits};

/// The statement as the extended protocol keeps it (the type datafusion-postgres's hooks use).
pub(crate) type PgStatement = (String, Option<(Statement, LogicalPlan)>);

/// A connection's statement handler.
pub(crate) struct Queries {
    pub connection: Arc<ConnectionState>,
    pub limits: Limits,
    parser: PostgresCompatibilityParser,
    hooks: Vec<Arc<dyn QueryHook>>,
}

impl Queries {
    pub(crate) fn new(connection: Arc<ConnectionState>, limits: Limits) -> Queries {
        Queries {
            connection,
            limits,
            parser: PostgresCompatibilityParser::new(),
            hooks: vec![
                Arc::new(CursorStatementHook),
                Arc::new(SetShowHook),
                Arc::new(TransactionStatementHook),
            ],
        }
    }

    /// The session, with the lake's latest versions registered.
    fn session(&self) -> PgWireResult<Arc<Session>> {
        let session = self.connection.session()?;
        session
            .refresh()
            .map_err(|e| user_error(error("58030", e)))?;
        Ok(session)
    }

    /// The statement timeout in force: the client's `SET statement_timeout`, at most the
    /// server's.
    fn timeout<C: ClientInfo + ?Sized>(&self, client: &C) -> Duration {
        client
            .metadata()
            .get("statement_timeout_ms")
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis)
            .filter(|t| !t.is_zero())
            .map_or(self.limits.statement_timeout, |t| {
                t.min(self.limits.statement_timeout)
            })
    }

    /// What ends a statement starting now: the timeout in force, or a cancel request.
    fn stop<C: ClientInfo + ?Sized>(&self, client: &C) -> Stop {
        Stop::new(
            Instant::now() + self.timeout(client),
            &self.connection.cancel,
        )
    }

    fn parse(&self, sql: &str) -> PgWireResult<Vec<Statement>> {
        self.parser
            .parse(sql)
            .map_err(|e| user_error(policy::unparsed(sql, &e.to_string())))
    }

    /// `SHOW server_version` and `server_version_num` as the server announced them at login
    /// (the hooks answer with pgwire's own), as a query of the value.
    fn own_show(&self, statement: Statement) -> Statement {
        let Statement::ShowVariable { variable } = &statement else {
            return statement;
        };
        let name = variable
            .iter()
            .map(|i| i.value.to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(".");
        let value = match name.as_str() {
            "server_version" => super::SERVER_VERSION.to_string(),
            "server_version_num" => "160006".to_string(),
            _ => return statement,
        };
        self.parser
            .parse(&format!("SELECT '{value}' AS {name}"))
            .ok()
            .and_then(|mut parsed| parsed.pop())
            .unwrap_or(statement)
    }

    /// Plans a query under the read-only options.
    async fn plan(&self, session: &Session, statement: &Statement) -> PgWireResult<DataFrame> {
        let state = session.ctx.state();
        let plan = state
            .statement_to_plan(EngineStatement::Statement(Box::new(statement.clone())))
            .await
            .map_err(engine_error)?;
        check_read_only(&plan)?;
        session
            .ctx
            .execute_logical_plan(plan)
            .await
            .map_err(engine_error)
    }
}

/// Refuses a plan that writes or changes anything (the policy's second line).
fn check_read_only(plan: &LogicalPlan) -> PgWireResult<()> {
    read_only_sql_options().verify_plan(plan).map_err(|e| {
        user_error(error(
            policy::INSUFFICIENT_PRIVILEGE,
            format!("permission denied: the lake is read-only here ({e})"),
        ))
    })
}

pub(crate) fn user_error(info: ErrorInfo) -> PgWireError {
    PgWireError::UserError(Box::new(info))
}

/// An engine error as a PostgreSQL error with the closest SQLSTATE.
pub(crate) fn engine_error(e: DataFusionError) -> PgWireError {
    let root = e.find_root();
    let message = root.to_string();
    let code = match root {
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::NotImplemented(_) => policy::FEATURE_NOT_SUPPORTED,
        DataFusionError::SQL(..) => "42601",
        DataFusionError::Plan(m) if m.contains("not found") => "42P01",
        DataFusionError::SchemaError(..) => "42703",
        DataFusionError::Plan(_) => "42000",
        DataFusionError::Execution(_) | DataFusionError::ArrowError(..) => "22000",
        _ => "XX000",
    };
    let code = if message.contains("table") && message.contains("not found") {
        "42P01"
    } else {
        code
    };
    user_error(error(code, message))
}

/// An error of datafusion-postgres's own execution: an engine error gets its SQLSTATE as in
/// [`engine_error`] (datafusion-postgres reports every engine error as XX000).
fn from_inner(e: PgWireError) -> PgWireError {
    match e {
        PgWireError::ApiError(inner) => match inner.downcast::<DataFusionError>() {
            Ok(df) => engine_error(*df),
            Err(other) => PgWireError::ApiError(other),
        },
        other => other,
    }
}

/// Bounds a response's rows by the statement's deadline, a cancel request and the row limit:
/// past any, the stream ends with an error (the client sees an error, not a silently cut
/// result).
fn bounded(mut response: QueryResponse, stop: Stop, max_rows: u64) -> QueryResponse {
    let rows = std::mem::replace(&mut response.data_rows, Box::pin(futures::stream::empty()));
    // The state: the rows, how many were sent, and whether an error ended the stream.
    let limited = futures::stream::unfold((rows, 0u64, false), move |(mut rows, sent, ended)| {
        let stop = stop.clone();
        async move {
            if ended {
                return None;
            }
            let row = match stop.within(rows.next()).await {
                Ok(Some(row)) => row.map_err(from_inner),
                Ok(None) => return None,
                Err(e) => Err(e),
            };
            let sent = sent + u64::from(row.is_ok());
            let row = if sent > max_rows {
                Err(user_error(error(
                    "54000",
                    format!(
                        "the result has more than {max_rows} rows, the limit of this server ([serve] pg_max_rows): aggregate, add a LIMIT, or page with a cursor"
                    ),
                )))
            } else {
                row
            };
            let ended = row.is_err();
            Some((row, (rows, sent, ended)))
        }
    });
    response.data_rows = Box::pin(limited);
    response
}

fn bound_response(response: Response, stop: &Stop, max_rows: u64) -> Response {
    match response {
        Response::Query(query) => Response::Query(bounded(query, stop.clone(), max_rows)),
        other => other,
    }
}

impl Queries {
    /// Plans `statement` unless `stop` comes first, and encodes its rows as text (the simple
    /// protocol's format, and COPY's).
    async fn rows_as_text<C: ClientInfo>(
        &self,
        client: &C,
        session: &Session,
        statement: &Statement,
        stop: &Stop,
    ) -> PgWireResult<QueryResponse> {
        let frame = stop.within(self.plan(session, statement)).await??;
        let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
        // Physical planning and the first batch happen here: bounded as well.
        stop.within(encode_dataframe(frame, &Format::UnifiedText, Some(options)))
            .await?
            .map_err(from_inner)
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.session()?;
        let statements = self.parse(query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            let statement = self.own_show(statement);
            let stop = self.stop(client);
            let response = match policy::classify(&statement, self.limits.statement_timeout) {
                Verdict::Refuse(info) => Err(user_error(info)),
                Verdict::Hook => {
                    let mut answered = None;
                    for hook in &self.hooks {
                        if let Some(response) = hook
                            .handle_simple_query(&statement, &session.ctx, client)
                            .await
                        {
                            answered = Some(response);
                            break;
                        }
                    }
                    match answered {
                        Some(response) => response,
                        None => Err(user_error(error(
                            policy::FEATURE_NOT_SUPPORTED,
                            format!("not supported here: {statement}"),
                        ))),
                    }
                }
                Verdict::Plan => self
                    .rows_as_text(client, &session, &statement, &stop)
                    .await
                    .map(Response::Query),
                Verdict::CopyOut { query, csv, header } => self
                    .rows_as_text(client, &session, &Statement::Query(query), &stop)
                    .await
                    .map(|rows| {
                        copy_out(
                            bounded(rows, stop.clone(), self.limits.max_rows),
                            csv,
                            header,
                        )
                    }),
            };
            match response {
                Ok(response) => {
                    responses.push(bound_response(response, &stop, self.limits.max_rows))
                }
                Err(PgWireError::UserError(info)) => {
                    // A failed statement ends the query string, as in PostgreSQL.
                    responses.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(responses)
    }
}

/// `COPY (query) TO STDOUT`: the rows in PostgreSQL's text format (tab-separated, `\N` for
/// NULL, backslash escapes) or as CSV, one CopyData message a row.
fn copy_out(rows: QueryResponse, csv: bool, header: bool) -> Response {
    let fields = rows.row_schema();
    let columns = fields.len();
    let header_line = (csv && header).then(|| {
        let names: Vec<String> = fields.iter().map(|f| csv_field(f.name())).collect();
        CopyData::new(format!("{}\n", names.join(",")).into())
    });
    let lines = rows.data_rows.map(move |row| {
        let row = row?;
        let values = decode_text_row(&row.data, row.field_count as usize);
        let mut line = String::new();
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                line.push(if csv { ',' } else { '\t' });
            }
            match (value, csv) {
                (None, false) => line.push_str("\\N"),
                (None, true) => {}
                (Some(text), false) => line.push_str(&text_field(text)),
                (Some(text), true) => line.push_str(&csv_field(text)),
            }
        }
        line.push('\n');
        Ok(CopyData::new(line.into()))
    });
    let stream = futures::stream::iter(header_line.map(Ok)).chain(lines);
    Response::CopyOut(CopyResponse::new(0, columns, stream))
}

/// The values of a text-format data row (`None` for NULL).
fn decode_text_row(data: &[u8], fields: usize) -> Vec<Option<String>> {
    let mut values = Vec::with_capacity(fields);
    let mut at = 0usize;
    for _ in 0..fields {
        let Some(len) = data.get(at..at + 4) else {
            break;
        };
        let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        at += 4;
        if len < 0 {
            values.push(None);
            continue;
        }
        let end = (at + len as usize).min(data.len());
        values.push(Some(String::from_utf8_lossy(&data[at..end]).into_owned()));
        at = end;
    }
    values
}

fn text_field(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

fn csv_field(value: &str) -> String {
    if value.is_empty() || value.contains([',', '"', '\n', '\r']) || value.trim() != value {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// The extended protocol's parser: the policy, then datafusion-postgres's parser in the
/// connection's session, then the plan checked read-only.
pub(crate) struct Parser {
    queries: Arc<Queries>,
}

impl Parser {
    pub(crate) fn new(queries: Arc<Queries>) -> Parser {
        Parser { queries }
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = PgStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = self.queries.session()?;
        let statements = self.queries.parse(sql)?;
        let Some(first) = statements.first() else {
            return Ok(None);
        };
        if statements.len() > 1 {
            return Err(user_error(error(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            )));
        }
        let planned = match policy::classify(first, self.queries.limits.statement_timeout) {
            Verdict::Refuse(info) => return Err(user_error(info)),
            Verdict::CopyOut { .. } => {
                return Err(user_error(error(
                    policy::FEATURE_NOT_SUPPORTED,
                    "COPY (query) TO STDOUT is answered over the simple query protocol only",
                )));
            }
            Verdict::Plan => true,
            Verdict::Hook => false,
        };
        let parsed = session
            .service
            .query_parser()
            .parse_sql(client, sql, types)
            .await
            .map_err(from_inner)?;
        if planned && let Some((_, Some((_, plan)))) = &parsed {
            check_read_only(plan)?;
        }
        Ok(parsed)
    }

    fn get_parameter_types(&self, statement: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.queries
            .connection
            .session()?
            .service
            .query_parser()
            .get_parameter_types(statement)
    }

    fn get_result_schema(
        &self,
        statement: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.queries
            .connection
            .session()?
            .service
            .query_parser()
            .get_result_schema(statement, column_format)
    }
}

/// The extended protocol: datafusion-postgres's execution in the connection's session,
/// bounded like the simple protocol's.
pub(crate) struct Extended {
    pub queries: Arc<Queries>,
    pub parser: Arc<Parser>,
}

#[async_trait]
impl ExtendedQueryHandler for Extended {
    type Statement = PgStatement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: std::fmt::Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = self.queries.connection.session()?;
        let stop = self.queries.stop(client);
        let response = stop
            .within(ExtendedQueryHandler::do_query(
                &*session.service,
                client,
                portal,
                max_rows,
            ))
            .await?
            .map_err(from_inner)?;
        Ok(bound_response(
            response,
            &stop,
            self.queries.limits.max_rows,
        ))
    }
}
