//! The read-only rule for the PostgreSQL front end: which statements a client may run.
//!
//! A [`QueryHook`] placed before the library's own hooks (cursors, `SET`/`SHOW`,
//! transactions). It lets through, unchanged:
//!
//! - queries (`SELECT`, `WITH`, `VALUES`) and `EXPLAIN` of a query, after planning them and
//!   checking the plan with DataFusion's [`SQLOptions`] (no DDL, DML or statements anywhere
//!   in it: a data-modifying `WITH` is refused here);
//! - `SHOW …`, `DECLARE`/`FETCH`/`CLOSE` of a cursor over a query, `BEGIN`/`COMMIT`/`ROLLBACK`
//!   (which clients such as psycopg send around every query);
//! - `SET` of a client setting (`statement_timeout`, `DateStyle`, `TIME ZONE`,
//!   `application_name`, …), which stays in the connection.
//!
//! and refuses with SQLSTATE `25006` (read_only_sql_transaction) everything else: DDL
//! (`CREATE EXTERNAL TABLE … LOCATION` would read any file the server can), DML, `COPY`, and
//! `SET datafusion.…`, which would change the engine's limits for every connection.

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Set, Statement};
use datafusion_postgres::QueryHook;
use datafusion_postgres::hooks::HookClient;
use pgwire::api::ClientInfo;
use pgwire::api::results::Response;
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use prometheus::IntCounterVec;

/// SQLSTATE read_only_sql_transaction.
pub const READ_ONLY: &str = "25006";

/// What the guard decided about a statement before planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A query: plan it and check the plan.
    Query,
    /// A session statement the library's hooks answer (SHOW, SET, cursors, transactions).
    Session,
    /// Refused.
    Forbidden,
}

/// Classify `s`.
pub fn kind(s: &Statement) -> Kind {
    match s {
        Statement::Query(_) => Kind::Query,
        Statement::Explain { statement, .. } => match kind(statement) {
            Kind::Query => Kind::Query,
            _ => Kind::Forbidden,
        },
        Statement::Set(set) => {
            if touches_engine(set) {
                Kind::Forbidden
            } else {
                Kind::Session
            }
        }
        Statement::ShowVariable { .. }
        | Statement::ShowStatus { .. }
        | Statement::ShowCatalogs { .. }
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ExplainTable { .. }
        | Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Declare { .. }
        | Statement::Fetch { .. }
        | Statement::Close { .. }
        | Statement::Discard { .. } => Kind::Session,
        _ => Kind::Forbidden,
    }
}

/// `SET datafusion.…` (or any dotted name): the engine's own settings, shared by every
/// connection.
fn touches_engine(set: &Set) -> bool {
    match set {
        Set::SingleAssignment { variable, .. } => variable.to_string().contains('.'),
        Set::ParenthesizedAssignments { variables, .. } => {
            variables.iter().any(|v| v.to_string().contains('.'))
        }
        Set::MultipleAssignments { assignments } => {
            assignments.iter().any(|a| a.name.to_string().contains('.'))
        }
        _ => false,
    }
}

fn refusal(what: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        READ_ONLY.into(),
        format!(
            "the Sideline archive is read-only: {what} is not allowed \
             (only SELECT, WITH, EXPLAIN, SHOW, SET of a client setting, cursors and transactions)"
        ),
    )))
}

fn first_words(s: &Statement) -> String {
    s.to_string()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The hook. Counts refusals in `refused` (label `reason`: `statement` or `plan`).
#[derive(Debug, Clone)]
pub struct ReadOnly {
    refused: IntCounterVec,
}

impl ReadOnly {
    /// A guard counting into `refused`.
    pub fn new(refused: IntCounterVec) -> Self {
        ReadOnly { refused }
    }

    /// Plan `s` (a query) and check the plan; the plan if allowed.
    async fn plan(&self, s: &Statement, ctx: &SessionContext) -> PgWireResult<LogicalPlan> {
        match kind(s) {
            Kind::Query => {}
            _ => {
                self.refused.with_label_values(&["statement"]).inc();
                return Err(refusal(&first_words(s)));
            }
        }
        let plan = ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(s.clone())))
            .await
            .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)
            .map_err(|e| {
                self.refused.with_label_values(&["plan"]).inc();
                refusal(&e.strip_backtrace())
            })?;
        Ok(plan)
    }

    /// `None` to let the statement through, an error to refuse it.
    async fn check(&self, s: &Statement, ctx: &SessionContext) -> Option<PgWireResult<Response>> {
        match kind(s) {
            Kind::Session => None,
            _ => self.plan(s, ctx).await.err().map(Err),
        }
    }
}

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        self.check(statement, ctx).await
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        match kind(statement) {
            Kind::Session => None,
            _ => Some(self.plan(statement, ctx).await),
        }
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        // Planned and checked at parse time; only a statement that slipped past it lands here.
        match kind(statement) {
            Kind::Forbidden => {
                self.refused.with_label_values(&["statement"]).inc();
                Some(Err(refusal(&first_words(statement))))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn k(sql: &str) -> Kind {
        let s = Parser::parse_sql(&PostgreSqlDialect {}, sql).expect("parses");
        kind(&s[0])
    }

    #[test]
    fn queries_and_session_statements_pass_everything_else_is_refused() {
        for q in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "EXPLAIN SELECT 1",
            "VALUES (1)",
        ] {
            assert_eq!(k(q), Kind::Query, "{q}");
        }
        for q in [
            "SET statement_timeout = 1000",
            "SET TIME ZONE 'UTC'",
            "SET application_name = 'grafana'",
            "SHOW server_version",
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
        ] {
            assert_eq!(k(q), Kind::Session, "{q}");
        }
        for q in [
            "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'",
            "CREATE TABLE x AS SELECT 1",
            "INSERT INTO metrics VALUES (1)",
            "DELETE FROM metrics",
            "UPDATE metrics SET hsr_m = 0",
            "DROP TABLE metrics",
            "COPY metrics TO '/tmp/x.csv'",
            "SET datafusion.execution.target_partitions = 64",
            "SET datafusion.runtime.memory_limit = '100G'",
            "EXPLAIN INSERT INTO metrics VALUES (1)",
            "CREATE VIEW v AS SELECT 1",
            "TRUNCATE metrics",
        ] {
            assert_eq!(k(q), Kind::Forbidden, "{q}");
        }
    }
}
