//! The HTTP/1.1 server around the router: `axum::serve` with what it lacks, a deadline for a
//! request's headers. Without one, a client that opens connections and sends its headers a
//! byte at a time (or not at all) holds each of them for as long as it likes, and enough such
//! clients leave no socket or task for anyone else.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long an accept that failed (out of file descriptors, say) waits before the next.
const ACCEPT_RETRY: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `stop` resolves; then accepts no more connections and
/// gives those open `grace` to finish their requests, and returns. A connection whose request
/// headers have not all arrived `header_read` after it began sending them is closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_read: Duration,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read);
    let connections = GracefulShutdown::new();
    // The connections' tasks, so that those still running at the deadline can be ended here.
    let mut tasks = tokio::task::JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, remote) = tokio::select! {
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(error = %error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = app.clone().map_request(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(remote));
            request
        });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = connections.watch(connection);
        tasks.spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = connections.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(
                grace_seconds = grace.as_secs(),
                "requests still in flight at the deadline are ended; their transactions roll back"
            );
            tasks.abort_all();
        }
    }
    // Every request has ended when this returns, so what they leave can be cleaned up.
    while tasks.join_next().await.is_some() {}
}
