//! What a connection may hold on to, so that a few hundred slow or idle
//! clients cannot take every file descriptor or every task of the server.
//!
//! * At most `MAX_CONNECTIONS` at once: a connection over the limit is
//!   closed as soon as it is accepted, before its TLS handshake.
//! * The TLS handshake must end within `TLS_HANDSHAKE_TIMEOUT`, and an
//!   HTTP/1 request head arrive within `HEADER_READ_TIMEOUT` (hyper's
//!   timer; it also runs while a keep-alive connection waits).
//! * A connection with no request in progress is closed after
//!   `IDLE_TIMEOUT`, whatever the client sends meanwhile: HTTP/2 pings,
//!   settings or a header block that never ends keep nothing open.
//! * A request must be answered within `REQUEST_TIMEOUT`, its body
//!   included (408 otherwise), so a body sent a byte at a time ends too;
//!   a long-poll (a bodiless GET with `wait`, at most 60 s) within
//!   `LONG_POLL_TIMEOUT`.
//!
//! These are constants, not settings: they bound abuse rather than shape
//! the service, and every request Twofold serves is small and quick.

use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use std::future::{ready, Future, Ready};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Well below Debian's default limit of 1,024 open files per process, which
/// also has to hold the database connections, log files and the listener.
pub const MAX_CONNECTIONS: usize = 512;
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough to carry a browser from one page to the next, and an
/// application from one call to the next in a burst.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Every request is answered in milliseconds; argon2 under load in seconds.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A long-poll (`GET /sdk/v1/authenticate/{id}?wait=`, `GET
/// /mobile/v1/requests?wait=`) may be answered only when its `wait` (at most
/// 60 s) has passed; it gets this long instead.
pub const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(75);
/// Requests one HTTP/2 connection may have in progress at once (hyper's
/// default is 200).
const HTTP2_MAX_STREAMS: u32 = 32;

/// Whether `req` is a long-poll, which waits on purpose: a GET with `wait`
/// on one of the two routes that take it (bodiless, so no slow body can
/// hide behind the longer limit).
pub fn is_long_poll(req: &axum::extract::Request) -> bool {
    let path = req.uri().path();
    req.method() == axum::http::Method::GET
        && (path.starts_with("/sdk/v1/authenticate/") || path == "/mobile/v1/requests")
        && req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|kv| kv.starts_with("wait=")))
}

/// Answers 408 when a request takes longer than `REQUEST_TIMEOUT`
/// (`LONG_POLL_TIMEOUT` for a long-poll), its body included.
pub async fn answer_in_time(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let limit = if is_long_poll(&req) {
        LONG_POLL_TIMEOUT
    } else {
        REQUEST_TIMEOUT
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => axum::http::StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

/// Sets the protocol timeouts and limits on the server's HTTP builder.
pub fn configure(builder: &mut auto::Builder<TokioExecutor>) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(HTTP2_MAX_STREAMS);
}

/// TLS over `Admission`: the limit and the idle watch apply from the
/// moment a connection is accepted, through its handshake.
pub fn acceptor(tls: RustlsConfig) -> RustlsAcceptor<Admission> {
    RustlsAcceptor::new(tls)
        .handshake_timeout(TLS_HANDSHAKE_TIMEOUT)
        .acceptor(Admission::new(MAX_CONNECTIONS))
}

/// Admits a connection while a slot is free, and watches it.
#[derive(Clone)]
pub struct Admission {
    slots: Arc<Semaphore>,
    last_warning: Arc<AtomicU64>,
}

impl Admission {
    pub fn new(max: usize) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(max)),
            last_warning: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Says so in the log, at most once a minute however many are refused.
    fn warn_full(&self) {
        let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
        let last = self.last_warning.load(Ordering::Relaxed);
        if now >= last + 60
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                limit = MAX_CONNECTIONS,
                "connection limit reached; refusing new connections"
            );
        }
    }
}

impl<I, S> Accept<I, S> for Admission
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    type Stream = Watched<I>;
    type Service = Tracked<S>;
    type Future = Ready<io::Result<(Watched<I>, Tracked<S>)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            self.warn_full();
            // Dropping the stream closes it at once: a refused client holds
            // no descriptor.
            return ready(Err(io::Error::other("connection limit reached")));
        };
        let activity = Arc::new(Activity::new());
        ready(Ok((
            Watched {
                inner: stream,
                idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
                activity: activity.clone(),
                _slot: slot,
            },
            Tracked {
                inner: service,
                activity,
            },
        )))
    }
}

/// When a connection last finished a request, and how many it has in
/// progress.
struct Activity {
    start: Instant,
    in_progress: AtomicUsize,
    /// Milliseconds after `start`.
    last_done: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            in_progress: AtomicUsize::new(0),
            last_done: AtomicU64::new(0),
        }
    }

    /// When the connection will have been idle too long, unless a request
    /// is in progress.
    fn idle_deadline(&self) -> Option<Instant> {
        (self.in_progress.load(Ordering::Acquire) == 0).then(|| {
            self.start
                + Duration::from_millis(self.last_done.load(Ordering::Acquire))
                + IDLE_TIMEOUT
        })
    }
}

/// One request in progress, until dropped (answered or abandoned).
struct InProgress(Arc<Activity>);

impl InProgress {
    fn start(activity: Arc<Activity>) -> InProgress {
        activity.in_progress.fetch_add(1, Ordering::AcqRel);
        InProgress(activity)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        let elapsed = u64::try_from(self.0.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_done.fetch_max(elapsed, Ordering::AcqRel);
        self.0.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's stream, which fails once the connection has been idle
/// for `IDLE_TIMEOUT` while waiting to read or write; hyper then closes it.
/// It holds the connection's slot until it is dropped.
pub struct Watched<I> {
    inner: I,
    idle: Pin<Box<Sleep>>,
    activity: Arc<Activity>,
    _slot: OwnedSemaphorePermit,
}

impl<I> Watched<I> {
    /// Called when the stream would wait: `Ready(error)` once idle too long,
    /// otherwise `Pending` with the timer armed to wake the task then.
    fn poll_idle<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        loop {
            if self.idle.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // The timer is only a reminder to look: requests may have been
            // answered (or be in progress) since it was set.
            let now = Instant::now();
            match self.activity.idle_deadline() {
                Some(deadline) if deadline <= now => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle for too long",
                    )));
                }
                Some(deadline) => self.idle.as_mut().reset(deadline),
                None => self.idle.as_mut().reset(now + IDLE_TIMEOUT),
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => this.poll_idle(cx),
            ready @ Poll::Ready(_) => ready,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            // A client that stops reading its answers is idle too.
            Poll::Pending => this.poll_idle(cx),
            ready @ Poll::Ready(_) => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => this.poll_idle(cx),
            ready @ Poll::Ready(_) => ready,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.poll_idle(cx),
            ready @ Poll::Ready(_) => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A connection's service, counting its requests in progress.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S, R> tower::Service<R> for Tracked<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        let in_progress = InProgress::start(self.activity.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let res = answer.await;
            drop(in_progress);
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_fails_and_one_with_a_request_in_progress_does_not() {
        let admission = Admission::new(1);
        let (client, server) = tokio::io::duplex(64);
        let (mut stream, service) = admission.accept(server, ()).await.unwrap();
        // The only slot is taken.
        let (_c2, s2) = tokio::io::duplex(64);
        assert!(admission.accept(s2, ()).await.is_err());

        let busy = InProgress::start(service.activity.clone());
        let mut buf = [0u8; 8];
        let waited = tokio::time::timeout(IDLE_TIMEOUT * 3, stream.read(&mut buf)).await;
        assert!(waited.is_err(), "a request in progress keeps it open");
        drop(busy);

        let started = Instant::now();
        let err = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() <= IDLE_TIMEOUT + Duration::from_millis(10));
        drop(client);

        // Its slot is free again once it is gone.
        drop(stream);
        let (_c3, s3) = tokio::io::duplex(64);
        assert!(admission.accept(s3, ()).await.is_ok());
    }

    fn request(method: &str, uri: &str) -> axum::extract::Request {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn only_bodiless_waits_on_the_two_long_poll_routes_are_long_polls() {
        let id = "0".repeat(32);
        assert!(is_long_poll(&request(
            "GET",
            &format!("/sdk/v1/authenticate/{id}?wait=60")
        )));
        assert!(is_long_poll(&request(
            "GET",
            "/mobile/v1/requests?x=1&wait=60"
        )));
        for (method, uri) in [
            ("GET", format!("/sdk/v1/authenticate/{id}")),
            ("POST", format!("/sdk/v1/authenticate/{id}?wait=60")),
            ("POST", "/mobile/v1/requests?wait=60".to_string()),
            ("GET", "/sdk/v1/users?wait=60".to_string()),
            ("GET", "/mobile/v1/requests?nowait=1".to_string()),
        ] {
            assert!(!is_long_poll(&request(method, &uri)), "{method} {uri}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_poll_outlives_the_request_timeout_and_nothing_else_does() {
        use tower::ServiceExt as _;
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(40)).await;
            "late"
        };
        let app = axum::Router::new()
            .route("/mobile/v1/requests", axum::routing::get(slow))
            .route("/sdk/v1/users", axum::routing::get(slow))
            .layer(axum::middleware::from_fn(answer_in_time));
        let poll = app
            .clone()
            .oneshot(request("GET", "/mobile/v1/requests?wait=40"))
            .await
            .unwrap();
        assert_eq!(poll.status(), axum::http::StatusCode::OK);
        let other = app.oneshot(request("GET", "/sdk/v1/users")).await.unwrap();
        assert_eq!(other.status(), axum::http::StatusCode::REQUEST_TIMEOUT);
    }
}
