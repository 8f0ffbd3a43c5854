//! Logging setup shared by every node binary.

use std::fmt;
use std::io::IsTerminal;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Installs a global subscriber writing to stderr: level from `RUST_LOG` (default `info`),
/// every line starting with the node id so that the logs of a whole cluster can be merged and
/// still read, and no ANSI colours unless stderr is a terminal (the harness captures it to a
/// file). Calling it again is harmless: the first subscriber stays.
pub fn init_tracing(node_id: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let format = WithNodeId {
        node_id: node_id.to_string(),
        inner: Format::default().with_ansi(ansi),
    };
    // Err only means a subscriber is already installed, which is fine.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(filter)
        .event_format(format)
        .try_init();
}

/// The default full format, prefixed by the node id.
struct WithNodeId {
    node_id: String,
    inner: Format<Full>,
}

impl<S, N> FormatEvent<S, N> for WithNodeId
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "{} ", self.node_id)?;
        self.inner.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_twice_does_not_panic() {
        init_tracing("n1");
        init_tracing("n2");
        tracing::info!("logging works");
    }
}
